"""LoadImage, LoadImageMask, LoadImageOutput, SaveImage and PreviewImage: the V1 classes ComfyUI packs subclass,
with ComfyUI's file conventions.

SaveImage writes PNGs with ``prompt`` and ``workflow`` (every ``extra_pnginfo`` key) text chunks and names them
``{prefix}_{counter:05}_.png``, continuing the counter found in the folder. Pixels go to 8 bits as ComfyUI's
``np.clip(255. * x, 0, 255).astype(np.uint8)`` does: by truncation, not rounding (0.999/255 is 0, not 1). Each file is written under a hidden
temporary name and renamed into place, so a crash mid-write never leaves a truncated PNG under its final name.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, ImageSequence, PngImagePlugin

from hearth.core import context
from hearth.core.context import annotated_path, atomic_path, save_path
from hearth.core.images import torch_module

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def to_8bit_pil(image: Any) -> Image.Image:
    """One ``[H, W, C]`` image as ComfyUI's savers encode it: clipped to 0..1, scaled by 255 and truncated."""
    array = np.clip(255.0 * image.detach().cpu().float().numpy(), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(array)


def input_images() -> list[str]:
    root = context.folders().input
    if not root.is_dir():
        return []
    found = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)


class LoadImage:
    """Load an image from the input folder; the mask comes from its alpha channel (1 where transparent)."""

    DISPLAY_NAME = "Load Image"
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"
    DESCRIPTION = "Load an image (all frames of an animated one) and a mask from its alpha channel."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": (input_images(), {"image_upload": True})}}

    def load_image(self, image: str) -> tuple[Any, Any]:
        torch = torch_module()
        path = annotated_path(image)
        frames, masks = [], []
        with Image.open(path) as opened:
            size = None
            for frame in ImageSequence.Iterator(opened):
                frame = ImageOps.exif_transpose(frame)
                if frame.mode.startswith("I;16"):
                    # Pillow opens 16-bit PNGs (depth maps, for one) as I;16, which convert("RGB") clips to
                    # white; as 32-bit "I" they take the same 16-to-8-bit scaling as ComfyUI's "I" images.
                    frame = frame.convert("I")
                if frame.mode == "I":
                    frame = frame.point(lambda v: v * (1 / 255))
                rgb = frame.convert("RGB")
                if size is None:
                    size = rgb.size
                elif rgb.size != size:
                    continue
                frames.append(torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0))
                if "A" in frame.getbands():
                    alpha = np.asarray(frame.getchannel("A"), dtype=np.float32) / 255.0
                    masks.append(1.0 - torch.from_numpy(alpha))
                elif frame.mode == "P" and "transparency" in frame.info:
                    alpha = np.asarray(frame.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
                    masks.append(1.0 - torch.from_numpy(alpha))
                else:
                    masks.append(torch.zeros((64, 64), dtype=torch.float32))
        if len(frames) > 1 and opened.format == "MPO":
            frames, masks = frames[:1], masks[:1]
        return torch.stack(frames), torch.stack(masks)

    @classmethod
    def IS_CHANGED(cls, image: str) -> str:
        digest = hashlib.sha256()
        with open(annotated_path(image), "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> bool | str:
        try:
            path = annotated_path(image)
        except ValueError as exc:
            return str(exc)
        if not path.is_file():
            return f"Invalid image file: {image} (no file at {path})"
        return True


class SaveImage:
    """Save images as PNG in the output folder, with the workflow embedded."""

    DISPLAY_NAME = "Save Image"
    CATEGORY = "image"
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    DESCRIPTION = "Saves the input images to your output folder."

    def __init__(self) -> None:
        self.kind = "output"
        self.prefix_append = ""
        self.compress_level = 4

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE", {"tooltip": "The images to save."}),
                             "filename_prefix": ("STRING", {"default": "ComfyUI"})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def folder(self) -> Path:
        return context.folders().for_type(self.kind)

    def save_images(self, images: Any, filename_prefix: str = "ComfyUI", prompt: Any = None,
                    extra_pnginfo: Any = None) -> dict[str, Any]:
        folder = self.folder()
        height, width = int(images.shape[1]), int(images.shape[2])
        directory, base, counter = save_path(filename_prefix + self.prefix_append, folder, width, height)
        subfolder = directory.relative_to(folder.resolve()).as_posix()
        results = []
        for batch_number, image in enumerate(images):
            context.check_interrupted()  # a large batch takes seconds to compress; stop between images
            info = PngImagePlugin.PngInfo()
            if prompt is not None:
                info.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_pnginfo or {}).items():
                info.add_text(key, json.dumps(value))
            name = f"{base.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
            with atomic_path(directory / name) as temp:
                to_8bit_pil(image).save(temp, format="PNG", pnginfo=info, compress_level=self.compress_level)
            results.append({"filename": name, "subfolder": "" if subfolder == "." else subfolder, "type": self.kind})
            counter += 1
        return {"ui": {"images": results}}


class PreviewImage(SaveImage):
    """Save images to the temp folder for viewing, without keeping them."""

    DISPLAY_NAME = "Preview Image"
    DESCRIPTION = "Previews the input images (written to the temp folder)."

    def __init__(self) -> None:
        super().__init__()
        self.kind = "temp"
        self.prefix_append = "_temp_" + "".join(random.choice(string.ascii_lowercase) for _ in range(5))
        self.compress_level = 1

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE",)},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}


class LoadImageMask:
    """ComfyUI's Load Image (as Mask): one channel of an image as a MASK. The alpha channel is inverted (1 where
    transparent), red/green/blue are taken as they are; an image without the channel gives a 64x64 empty mask."""

    DISPLAY_NAME = "Load Image (as Mask)"
    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "load_image"
    CHANNELS = ["alpha", "red", "green", "blue"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": (input_images(), {"image_upload": True}), "channel": (cls.CHANNELS,)}}

    def load_image(self, image: str, channel: str) -> tuple[Any]:
        if channel not in self.CHANNELS:
            raise ValueError(f"input 'channel': {channel!r} is not one of {self.CHANNELS}")
        torch = torch_module()
        with Image.open(annotated_path(image)) as opened:
            frame = ImageOps.exif_transpose(opened)
            if frame.mode.startswith("I;16"):
                frame = frame.convert("I")
            if frame.mode == "I":
                frame = frame.point(lambda v: v * (1 / 255))
            if frame.getbands() != ("R", "G", "B", "A"):
                if frame.mode == "I":
                    frame = frame.convert("L")
                frame = frame.convert("RGBA")
            band = channel[0].upper()
            if band not in frame.getbands():
                return (torch.zeros((1, 64, 64), dtype=torch.float32),)
            mask = torch.from_numpy(np.asarray(frame.getchannel(band), dtype=np.float32) / 255.0)
        if band == "A":
            mask = 1.0 - mask
        return (mask.unsqueeze(0),)

    @classmethod
    def IS_CHANGED(cls, image: str, channel: str) -> str:
        return LoadImage.IS_CHANGED(image)

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> bool | str:
        return LoadImage.VALIDATE_INPUTS(image)


class LoadImageOutput(LoadImage):
    """ComfyUI's Load Image (from Outputs): LoadImage over the output folder. The browser lists the files itself
    (``remote`` route) and sends ``name [output]``; a bare name is looked up in the output folder too."""

    DISPLAY_NAME = "Load Image (from Outputs)"
    DESCRIPTION = ("Load an image from the output folder. When the refresh button is clicked, the node will update "
                   "the image list and automatically select the first image, allowing for easy iteration.")
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("COMBO", {
            "image_upload": True, "image_folder": "output",
            "remote": {"route": "/internal/files/output", "refresh_button": True, "control_after_refresh": "first"}})}}

    @staticmethod
    def _in_output(image: str) -> str:
        return image if image.rstrip().endswith("]") else f"{image} [output]"

    def load_image(self, image: str) -> tuple[Any, Any]:
        return super().load_image(self._in_output(image))

    @classmethod
    def IS_CHANGED(cls, image: str) -> str:
        return LoadImage.IS_CHANGED(cls._in_output(image))

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> bool | str:
        return LoadImage.VALIDATE_INPUTS(cls._in_output(image))


NODES = {"LoadImage": LoadImage, "LoadImageMask": LoadImageMask, "LoadImageOutput": LoadImageOutput,
         "SaveImage": SaveImage, "PreviewImage": PreviewImage}
