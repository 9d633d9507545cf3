"""LoadImage, SaveImage and PreviewImage: the V1 classes ComfyUI packs subclass, with ComfyUI's file conventions.

SaveImage writes PNGs with ``prompt`` and ``workflow`` (every ``extra_pnginfo`` key) text chunks and names them
``{prefix}_{counter:05}_.png``, continuing the counter found in the folder. Each file is written under a hidden
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
from hearth.core.images import tensor_to_pil, torch_module

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


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
                tensor_to_pil(image).save(temp, format="PNG", pnginfo=info, compress_level=self.compress_level)
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


NODES = {"LoadImage": LoadImage, "SaveImage": SaveImage, "PreviewImage": PreviewImage}
