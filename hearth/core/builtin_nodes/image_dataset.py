"""ComfyUI's experimental dataset image nodes (category ``dataset/image``): resizing, cropping, normalizing,
shuffling, de-duplicating and gridding images for training sets.

ComfyUI runs the per-image ones once per image (a list of images downstream of a folder loader) and passes most of
them through PIL, so their results are 8-bit (truncated from float); Hearth does the same, and also takes a batch,
image by image, where ComfyUI's PIL step would fail. The list ones (shuffle, de-duplicate, grid, merge) take the
whole list (``INPUT_IS_LIST``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from hearth.core.images import check_image, torch_module

SEED = ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "Random seed."})
_IMAGE = ("IMAGE", {"tooltip": "Image to process."})
_IMAGES = ("IMAGE", {"tooltip": "List of images to process."})


def to_pil(image: Any) -> Image.Image:
    """One ``[H, W, C]`` image as ComfyUI's dataset nodes make it: ``(x * 255)`` clipped and truncated to bytes."""
    pixels = (image.detach().cpu().float().numpy() * 255).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def from_pil(image: Image.Image) -> Any:
    return torch_module().from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]


def _rng(seed: int) -> np.random.RandomState:
    # ComfyUI seeds numpy's global legacy generator this way; a RandomState seeded alike draws the same numbers.
    return np.random.RandomState(seed % (2**32 - 1))


class _PerImage:
    """A dataset node applied to each image of its input on its own (ComfyUI's ``ImageProcessingNode``)."""

    CATEGORY = "dataset/image"
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "process"
    EXTRA: dict[str, Any] = {}

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": _IMAGE, **cls.EXTRA}}

    def process(self, images: Any, **options: Any) -> tuple[Any]:
        torch = torch_module()
        done = [self.one(image, **options) for image in check_image(images, "images")]
        if any(item.shape[1:] != done[0].shape[1:] for item in done):
            raise ValueError("images: the results differ in size and cannot form one batch; send the images one "
                             "by one (as a list)")
        return (torch.cat(done, dim=0),)

    def one(self, image: Any, **options: Any) -> Any:
        raise NotImplementedError


def _resize_edge(image: Any, length: int, *, longer: bool, name: str) -> Any:
    """``image`` ``[H, W, C]`` resized with PIL's lanczos so that its longer (or shorter) edge is ``length`` and the
    other edge is truncated; a square counts as tall for the longer edge and as wide for the shorter, as ComfyUI's.

    :raises ValueError: naming the input ``name`` when the other edge would be under one pixel.
    """
    height, width = image.shape[:2]
    fit_width = width > height if longer else width < height
    size = (length, int(height * (length / width))) if fit_width else (int(width * (length / height)), length)
    if min(size) < 1:
        raise ValueError(f"{name}: {length} leaves this {width}x{height} image {size[0]}x{size[1]} pixels; use a "
                         "longer edge")
    return from_pil(to_pil(image).resize(size, Image.Resampling.LANCZOS))


class ResizeImagesByLongerEdge(_PerImage):
    """ComfyUI's Resize Images by Longer Edge: the longer edge becomes ``longer_edge``, the other truncated;
    lanczos in PIL. A square counts as tall."""

    DISPLAY_NAME = "Resize Images by Longer Edge"
    DESCRIPTION = "Resize images so that the longer edge matches the specified length while preserving aspect ratio."
    EXTRA = {"longer_edge": ("INT", {"default": 1024, "min": 1, "max": 8192,
                                     "tooltip": "Target length for the longer edge."})}

    def one(self, image: Any, longer_edge: int) -> Any:
        return _resize_edge(image, longer_edge, longer=True, name="longer_edge")


class ResizeImagesByShorterEdge(_PerImage):
    """ComfyUI's Resize Images by Shorter Edge: the shorter edge becomes ``shorter_edge``, the other truncated;
    lanczos in PIL. A square counts as wide."""

    DISPLAY_NAME = "Resize Images by Shorter Edge"
    DESCRIPTION = "Resize images so that the shorter edge matches the specified length while preserving aspect ratio."
    EXTRA = {"shorter_edge": ("INT", {"default": 512, "min": 1, "max": 8192,
                                      "tooltip": "Target length for the shorter edge."})}

    def one(self, image: Any, shorter_edge: int) -> Any:
        return _resize_edge(image, shorter_edge, longer=False, name="shorter_edge")


class CenterCropImages(_PerImage):
    """ComfyUI's Center Crop Images: the centred ``width`` x ``height`` region (cut at the image's edges)."""

    DISPLAY_NAME = "Center Crop Images"
    DESCRIPTION = "Center crop all images to the specified dimensions."
    EXTRA = {"width": ("INT", {"default": 512, "min": 1, "max": 8192, "tooltip": "Crop width."}),
             "height": ("INT", {"default": 512, "min": 1, "max": 8192, "tooltip": "Crop height."})}

    def one(self, image: Any, width: int, height: int) -> Any:
        pil = to_pil(image)
        left, top = max(0, (pil.width - width) // 2), max(0, (pil.height - height) // 2)
        return from_pil(pil.crop((left, top, min(pil.width, left + width), min(pil.height, top + height))))


class RandomCropImages(_PerImage):
    """ComfyUI's Random Crop Images: a ``width`` x ``height`` region at a position drawn from ``seed`` (numpy's
    legacy generator, as ComfyUI), the same position for every image of one size."""

    DISPLAY_NAME = "Random Crop Images"
    DESCRIPTION = "Randomly crop all images to the specified dimensions (for data augmentation)."
    EXTRA = {"width": ("INT", {"default": 512, "min": 1, "max": 8192, "tooltip": "Crop width."}),
             "height": ("INT", {"default": 512, "min": 1, "max": 8192, "tooltip": "Crop height."}),
             "seed": SEED}

    def one(self, image: Any, width: int, height: int, seed: int) -> Any:
        rng = _rng(seed)
        pil = to_pil(image)
        max_left, max_top = max(0, pil.width - width), max(0, pil.height - height)
        left = rng.randint(0, max_left + 1) if max_left > 0 else 0
        top = rng.randint(0, max_top + 1) if max_top > 0 else 0
        return from_pil(pil.crop((left, top, min(pil.width, left + width), min(pil.height, top + height))))


class NormalizeImages(_PerImage):
    """ComfyUI's Normalize Images: ``(image - mean) / std`` (values leave 0..1, for training)."""

    DISPLAY_NAME = "Normalize Images"
    DESCRIPTION = "Normalize images using mean and standard deviation."
    EXTRA = {"mean": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "tooltip": "Mean value for normalization."}),
             "std": ("FLOAT", {"default": 0.5, "min": 0.001, "max": 1.0,
                               "tooltip": "Standard deviation for normalization."})}

    def one(self, image: Any, mean: float, std: float) -> Any:
        return ((image - mean) / std)[None]


class AdjustBrightness(_PerImage):
    """ComfyUI's Adjust Brightness: ``image * factor``, clamped."""

    DISPLAY_NAME = "Adjust Brightness"
    DESCRIPTION = "Adjust brightness of all images."
    EXTRA = {"factor": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "tooltip": (
        "Brightness factor. 1.0 = no change, <1.0 = darker, >1.0 = brighter.")})}

    def one(self, image: Any, factor: float) -> Any:
        return (image * factor).clamp(0.0, 1.0)[None]


class AdjustContrast(_PerImage):
    """ComfyUI's Adjust Contrast: values spread around 0.5 by ``factor``, clamped."""

    DISPLAY_NAME = "Adjust Contrast"
    DESCRIPTION = "Adjust contrast of all images."
    EXTRA = {"factor": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "tooltip": (
        "Contrast factor. 1.0 = no change, <1.0 = less contrast, >1.0 = more contrast.")})}

    def one(self, image: Any, factor: float) -> Any:
        return ((image - 0.5) * factor + 0.5).clamp(0.0, 1.0)[None]


class _WholeList:
    CATEGORY = "dataset/image"
    EXPERIMENTAL = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "process"


class ShuffleDataset(_WholeList):
    """ComfyUI's Shuffle Image Dataset: the list in the order numpy's permutation for ``seed`` gives."""

    DISPLAY_NAME = "Shuffle Image Dataset"
    DESCRIPTION = "Randomly shuffle the order of images in the dataset."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": _IMAGES, "seed": SEED}}

    def process(self, images: list[Any], seed: list[int]) -> tuple[list[Any]]:
        return ([images[i] for i in _rng(seed[0]).permutation(len(images))],)


class ShuffleImageTextDataset:
    """ComfyUI's Shuffle Image-Text Dataset: images and their captions shuffled together."""

    DISPLAY_NAME = "Shuffle Image-Text Dataset"
    CATEGORY = "dataset/image"
    EXPERIMENTAL = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("images", "texts")
    OUTPUT_IS_LIST = (True, True)
    FUNCTION = "process"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE", {"tooltip": "List of images to shuffle."}),
                             "texts": ("STRING", {"tooltip": "List of texts to shuffle."}), "seed": SEED}}

    def process(self, images: list[Any], texts: list[str], seed: list[int]) -> tuple[list[Any], list[str]]:
        if len(texts) != len(images):
            raise ValueError(f"texts: {len(texts)} captions for {len(images)} images; give one caption per image")
        order = _rng(seed[0]).permutation(len(images))
        return [images[i] for i in order], [texts[i] for i in order]


def average_hash(image: Any) -> np.ndarray:
    """64 bits: the 8x8 lanczos thumbnail's grey pixels (PIL's L) above their mean."""
    pixels = np.asarray(to_pil(image[0]).resize((8, 8), Image.Resampling.LANCZOS).convert("L"), dtype=np.int64)
    return (pixels > pixels.sum() / pixels.size).ravel()


class ImageDeduplication(_WholeList):
    """ComfyUI's Image Deduplication: an image is dropped when its average hash agrees with a kept one's in at
    least ``similarity_threshold`` of the 64 bits."""

    DISPLAY_NAME = "Image Deduplication"
    DESCRIPTION = "Remove duplicate or very similar images from the dataset."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": _IMAGES, "similarity_threshold": ("FLOAT", {
            "default": 0.95, "min": 0.0, "max": 1.0, "tooltip": "Similarity threshold (0-1). Higher means more "
            "similar. Images above this threshold are considered duplicates."})}}

    def process(self, images: list[Any], similarity_threshold: list[float]) -> tuple[list[Any]]:
        hashes = [average_hash(check_image(image, "images")) for image in images]
        kept: list[int] = []
        for i, bits in enumerate(hashes):
            if all(1.0 - np.count_nonzero(bits != hashes[j]) / 64.0 < similarity_threshold[0] for j in kept):
                kept.append(i)
        return ([images[i] for i in kept],)


class ImageGrid(_WholeList):
    """ComfyUI's Image Grid: the list resized (lanczos) into ``columns`` cells per row, ``padding`` black pixels
    between cells, as one RGB image."""

    DISPLAY_NAME = "Image Grid"
    DESCRIPTION = "Arrange multiple images into a grid layout."
    OUTPUT_IS_LIST = (False,)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "images": _IMAGES,
            "columns": ("INT", {"default": 4, "min": 1, "max": 20, "tooltip": "Number of columns in the grid."}),
            "cell_width": ("INT", {"default": 256, "min": 32, "max": 2048, "tooltip": "Width of each cell in the grid."}),
            "cell_height": ("INT", {"default": 256, "min": 32, "max": 2048,
                                    "tooltip": "Height of each cell in the grid."}),
            "padding": ("INT", {"default": 4, "min": 0, "max": 50, "tooltip": "Padding between images."}),
        }}

    def process(self, images: list[Any], columns: list[int], cell_width: list[int], cell_height: list[int],
                padding: list[int]) -> tuple[Any]:
        cols, width, height, gap = columns[0], cell_width[0], cell_height[0], padding[0]
        cells = [image for batch in images for image in check_image(batch, "images")]
        if not cells:
            raise ValueError("images: cannot make a grid of no images")
        rows = -(-len(cells) // cols)
        grid = Image.new("RGB", (cols * width + (cols - 1) * gap, rows * height + (rows - 1) * gap))
        for index, image in enumerate(cells):
            cell = to_pil(image).resize((width, height), Image.Resampling.LANCZOS).convert("RGB")
            grid.paste(cell, ((index % cols) * (width + gap), (index // cols) * (height + gap)))
        return (from_pil(grid),)


class MergeImageLists(_WholeList):
    """ComfyUI's Merge Image Lists: the incoming lists as one list (the executor joins them)."""

    DISPLAY_NAME = "Merge Image Lists"
    DESCRIPTION = "Concatenate multiple image lists into one."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": _IMAGES}}

    def process(self, images: list[Any]) -> tuple[list[Any]]:
        return (list(images),)


NODES = {cls.__name__: cls for cls in (ResizeImagesByLongerEdge, ResizeImagesByShorterEdge, CenterCropImages, RandomCropImages,
                                       NormalizeImages, AdjustBrightness, AdjustContrast, ShuffleDataset,
                                       ShuffleImageTextDataset, ImageDeduplication, ImageGrid, MergeImageLists)}
