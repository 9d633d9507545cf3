"""Image geometry and batch nodes with ComfyUI's names and rules: GetImageSize, ImageFlip, ImageRotate, ImageStitch,
ImageCropV2 (and its PrimitiveBoundingBox), ImageFromBatch, RepeatImageBatch, RebatchImages, ImageAddNoise."""

from __future__ import annotations

from typing import Any

from hearth.core.images import MAX_RESOLUTION, check_image, torch_module, upscale


class GetImageSize:
    """ComfyUI's Get Image Size: width, height and batch size of an image. (ComfyUI also shows them as progress
    text on the node; Hearth does not.)"""

    DISPLAY_NAME = "Get Image Size"
    DESCRIPTION = "Returns width and height of the image, and passes it through unchanged."
    CATEGORY = "image"
    RETURN_TYPES = ("INT", "INT", "INT")
    RETURN_NAMES = ("width", "height", "batch_size")
    FUNCTION = "get_size"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}, "hidden": {"unique_id": "UNIQUE_ID"}}

    def get_size(self, image: Any, unique_id: Any = None) -> tuple[int, int, int]:
        batch, height, width = check_image(image).shape[:3]
        return int(width), int(height), int(batch)


class ImageFlip:
    """ComfyUI's ImageFlip: ``x-axis`` mirrors top to bottom, ``y-axis`` left to right."""

    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "flip"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",), "flip_method": (["x-axis: vertically", "y-axis: horizontally"],)}}

    def flip(self, image: Any, flip_method: str) -> tuple[Any]:
        torch = torch_module()
        check_image(image)
        if flip_method.startswith("x"):
            return (torch.flip(image, dims=[1]),)
        if flip_method.startswith("y"):
            return (torch.flip(image, dims=[2]),)
        raise ValueError(f"flip_method: {flip_method!r} is not 'x-axis: vertically' or 'y-axis: horizontally'")


class ImageRotate:
    """ComfyUI's Rotate: clockwise by a quarter, half or three-quarter turn."""

    DISPLAY_NAME = "Rotate"
    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "rotate"
    TURNS = {"none": 0, "90 degrees": 1, "180 degrees": 2, "270 degrees": 3}

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",), "rotation": (list(cls.TURNS),)}}

    def rotate(self, image: Any, rotation: str) -> tuple[Any]:
        if rotation not in self.TURNS:
            raise ValueError(f"rotation: {rotation!r} is not one of {list(self.TURNS)}")
        # rot90 from the width axis towards the height axis turns the picture clockwise, as ComfyUI's does.
        return (torch_module().rot90(check_image(image), k=self.TURNS[rotation], dims=[2, 1]),)


SPACING_COLORS: dict[str, Any] = {"white": 1.0, "black": 0.0, "red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0),
                                  "blue": (0.0, 0.0, 1.0)}


class ImageStitch:
    """ComfyUI's Stitch Images: ``image2`` beside or above/below ``image1``, optionally resized (lanczos) to fit,
    with an optional band of colour between. Shorter batches repeat their last image; an RGB image next to an
    RGBA one gains an opaque alpha channel."""

    DISPLAY_NAME = "Stitch Images"
    DESCRIPTION = ("Stitches image2 to image1 in the specified direction.\nIf image2 is not provided, returns image1 "
                   "unchanged.\nOptional spacing can be added between images.")
    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "stitch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image1": ("IMAGE",),
            "direction": (["right", "down", "left", "up"], {"default": "right"}),
            "match_image_size": ("BOOLEAN", {"default": True}),
            "spacing_width": ("INT", {"default": 0, "min": 0, "max": 1024, "step": 2}),
            "spacing_color": (list(SPACING_COLORS), {"default": "white"}),
        }, "optional": {"image2": ("IMAGE",)}}

    def stitch(self, image1: Any, direction: str, match_image_size: bool, spacing_width: int, spacing_color: str,
               image2: Any = None) -> tuple[Any]:
        torch = torch_module()
        check_image(image1, "image1")
        if image2 is None:
            return (image1,)
        check_image(image2, "image2")
        sideways = direction in ("left", "right")
        batch = max(image1.shape[0], image2.shape[0])
        image1, image2 = (torch.cat([im, im[-1:].repeat(batch - im.shape[0], 1, 1, 1)]) if im.shape[0] < batch else im
                          for im in (image1, image2))
        color = SPACING_COLORS[spacing_color]
        if match_image_size:
            (h1, w1), (h2, w2) = image1.shape[1:3], image2.shape[1:3]
            if sideways:
                size = (int(h1 * (w2 / h2)), h1)
            else:
                size = (w1, int(w1 / (w2 / h2)))
            image2 = upscale(image2, *size, "lanczos")
        else:
            # The other side is padded (centred) to the larger image; a coloured band pads with black, as ComfyUI.
            fill = 0.0 if isinstance(color, tuple) else color
            axis = 1 if sideways else 2
            longest = max(image1.shape[axis], image2.shape[axis])
            image1, image2 = (_pad_centred(im, axis, longest, fill) for im in (image1, image2))
        channels = max(image1.shape[-1], image2.shape[-1])
        image1, image2 = (torch.cat([im, torch.ones(*im.shape[:-1], channels - im.shape[-1], dtype=im.dtype)], dim=-1)
                          if im.shape[-1] < channels else im for im in (image1, image2))
        parts = [image2, image1] if direction in ("left", "up") else [image1, image2]
        if spacing_width > 0:
            spacing_width += spacing_width % 2
            shape = ((batch, max(image1.shape[1], image2.shape[1]), spacing_width, channels) if sideways
                     else (batch, spacing_width, max(image1.shape[2], image2.shape[2]), channels))
            band = torch.zeros(shape, dtype=image1.dtype)
            values = color if isinstance(color, tuple) else (color,) * 3
            for index, value in enumerate(values[:channels]):
                band[..., index] = value
            if channels == 4:
                band[..., 3] = 1.0
            parts.insert(1, band)
        if parts[0].shape[2 if not sideways else 1] != parts[-1].shape[2 if not sideways else 1]:
            raise ValueError(f"image2: its {'height' if sideways else 'width'} does not match image1's; turn "
                             "match_image_size on, or resize one first")
        return (torch.cat(parts, dim=2 if sideways else 1),)


def _pad_centred(image: Any, axis: int, size: int, value: float) -> Any:
    torch = torch_module()
    missing = size - image.shape[axis]
    if missing <= 0:
        return image
    before, after = missing // 2, missing - missing // 2
    pad = (0, 0, 0, 0, before, after) if axis == 1 else (0, 0, before, after)
    return torch.nn.functional.pad(image, pad, mode="constant", value=value)


class ImageCropV2:
    """ComfyUI's Crop Image with a bounding-box widget (``crop_region``: a dict of ``x``, ``y``, ``width``,
    ``height``), cropping as ImageCrop does. ComfyUI also previews the crop on the node; Hearth does not."""

    DISPLAY_NAME = "Crop Image"
    DESCRIPTION = "Crop an image to the specified dimensions."
    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",), "crop_region": ("BOUNDING_BOX", {"component": "ImageCrop"})}}

    def crop(self, image: Any, crop_region: Any) -> tuple[Any]:
        check_image(image)
        if not isinstance(crop_region, dict):
            raise ValueError("crop_region: expected a bounding box {x, y, width, height}, got "
                             f"{type(crop_region).__name__}")
        box = {"x": 0, "y": 0, "width": 512, "height": 512} | crop_region
        for key in ("x", "y", "width", "height"):
            if isinstance(box[key], bool) or not isinstance(box[key], int) or box[key] < (1 if key in (
                    "width", "height") else 0):
                raise ValueError(f"crop_region.{key}: expected a whole number >= "
                                 f"{1 if key in ('width', 'height') else 0}, got {box[key]!r}")
        x, y = min(box["x"], image.shape[2] - 1), min(box["y"], image.shape[1] - 1)
        return (image[:, y:y + box["height"], x:x + box["width"], :],)


class PrimitiveBoundingBox:
    """ComfyUI's Bounding Box primitive: ``{"x", "y", "width", "height"}`` for ImageCropV2, DrawBBoxes and the
    like."""

    DISPLAY_NAME = "Bounding Box"
    CATEGORY = "utilities/primitive"
    RETURN_TYPES = ("BOUNDING_BOX",)
    FUNCTION = "box"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        position = {"default": 0, "min": 0, "max": MAX_RESOLUTION}
        side = {"default": 512, "min": 1, "max": MAX_RESOLUTION}
        return {"required": {"x": ("INT", position), "y": ("INT", position), "width": ("INT", side),
                             "height": ("INT", side)}}

    def box(self, x: int, y: int, width: int, height: int) -> tuple[dict[str, int]]:
        return ({"x": x, "y": y, "width": width, "height": height},)


class ImageFromBatch:
    """ComfyUI's Get Image from Batch: ``length`` images from ``batch_index`` (negative counts from the end);
    an index or length past the batch is clamped to it."""

    DISPLAY_NAME = "Get Image from Batch"
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "frombatch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "batch_index": ("INT", {"default": 0, "min": -MAX_RESOLUTION, "max": MAX_RESOLUTION}),
            "length": ("INT", {"default": 1, "min": 1, "max": 4096}),
        }}

    def frombatch(self, image: Any, batch_index: int, length: int) -> tuple[Any]:
        total = check_image(image).shape[0]
        if batch_index < 0:
            batch_index += total
        batch_index = max(0, min(total - 1, batch_index))
        length = min(total - batch_index, length)
        return (image[batch_index:batch_index + length].clone(),)


class RepeatImageBatch:
    """ComfyUI's Repeat Image Batch: the whole batch ``amount`` times over."""

    DISPLAY_NAME = "Repeat Image Batch"
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "repeat"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",), "amount": ("INT", {"default": 1, "min": 1, "max": 4096})}}

    def repeat(self, image: Any, amount: int) -> tuple[Any]:
        return (check_image(image).repeat((amount, 1, 1, 1)),)


class RebatchImages:
    """ComfyUI's Rebatch Images: the images of every incoming batch, in order, regrouped into batches of
    ``batch_size`` (a list of batches, the last one shorter where they do not divide)."""

    DISPLAY_NAME = "Rebatch Images"
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    INPUT_IS_LIST = True
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "rebatch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE",), "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})}}

    def rebatch(self, images: list[Any], batch_size: list[int]) -> tuple[list[Any]]:
        torch = torch_module()
        size = batch_size[0]
        singles = [image[i:i + 1] for image in images for i in range(check_image(image, "images").shape[0])]
        groups = [singles[i:i + size] for i in range(0, len(singles), size)]
        for group in groups:
            if any(item.shape[1:] != group[0].shape[1:] for item in group):
                raise ValueError("images: images of different sizes cannot share a batch; resize them to one size "
                                 "first or use batch_size 1")
        return ([torch.cat(group, dim=0) for group in groups],)


class ImageAddNoise:
    """ComfyUI's Add Noise to Image: Gaussian noise from a CPU generator seeded with ``seed`` (the same numbers as
    ComfyUI's for the same seed and shape), times ``strength``, clamped to 0..1."""

    DISPLAY_NAME = "Add Noise to Image"
    CATEGORY = "image/filters"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "add_noise"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                             "tooltip": "The random seed used for creating the noise."}),
            "strength": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}),
        }}

    def add_noise(self, image: Any, seed: int, strength: float) -> tuple[Any]:
        torch = torch_module()
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(check_image(image).size(), generator=generator, device="cpu").to(image)
        return (torch.clip(image + strength * noise, min=0.0, max=1.0),)


NODES = {cls.__name__: cls for cls in (GetImageSize, ImageFlip, ImageRotate, ImageStitch, ImageCropV2,
                                       PrimitiveBoundingBox, ImageFromBatch, RepeatImageBatch, RebatchImages, ImageAddNoise)}
