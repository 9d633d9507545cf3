"""The text and folder nodes of ComfyUI's ``nodes_dataset.py`` (training datasets): per-text transforms, Merge Text
Lists, and loading/saving image (and caption) datasets from/to folders. IMAGE's ``image_dataset`` has the image
transforms.

Each text transform runs once per text (the executor maps it over a list of captions) and gives the text; ComfyUI's
base class wraps that single result in a one-item list, which downstream text nodes would receive as a list, so here
the text itself is the output. Folder listings are sorted (ComfyUI takes the file system's order).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hearth.core import context
from hearth.core.context import atomic_path
from hearth.core.images import torch_module

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def _text_node(node_id: str, display: str, description: str, transform: Callable[..., str],
               extra: dict[str, Any] | None = None) -> type:
    extra = extra or {}

    def input_types(cls: type) -> dict[str, Any]:
        return {"required": {"texts": ("STRING", {"tooltip": "Text to process."}), **extra}}

    def execute(self: Any, texts: str, **options: Any) -> tuple[str]:
        if not isinstance(texts, str):
            raise ValueError(f"input 'texts': expected a STRING, got {type(texts).__name__}")
        return (transform(texts, **options),)

    return type(node_id, (), {
        "DISPLAY_NAME": display, "DESCRIPTION": description, "CATEGORY": "dataset/text", "EXPERIMENTAL": True,
        "RETURN_TYPES": ("STRING",), "RETURN_NAMES": ("texts",), "FUNCTION": "execute",
        "INPUT_TYPES": classmethod(input_types), "execute": execute, "__module__": __name__,
        "__doc__": f"ComfyUI's {display}: {description}"})


TEXT_NODES = [
    _text_node("TextToLowercase", "Text to Lowercase", "Convert all texts to lowercase.", lambda t: t.lower()),
    _text_node("TextToUppercase", "Text to Uppercase", "Convert all texts to uppercase.", lambda t: t.upper()),
    _text_node("TruncateText", "Truncate Text", "Truncate all texts to a maximum length.",
               lambda t, max_length: t[:max_length],
               {"max_length": ("INT", {"default": 77, "min": 1, "max": 10000, "tooltip": "Maximum text length."})}),
    _text_node("AddTextPrefix", "Add Text Prefix", "Add a prefix to all texts.", lambda t, prefix: prefix + t,
               {"prefix": ("STRING", {"default": "", "tooltip": "Prefix to add."})}),
    _text_node("AddTextSuffix", "Add Text Suffix", "Add a suffix to all texts.", lambda t, suffix: t + suffix,
               {"suffix": ("STRING", {"default": "", "tooltip": "Suffix to add."})}),
    _text_node("ReplaceText", "Replace Text", "Replace text in all texts.",
               lambda t, find, replace: t.replace(find, replace),
               {"find": ("STRING", {"default": "", "tooltip": "Text to find."}),
                "replace": ("STRING", {"default": "", "tooltip": "Text to replace with."})}),
    _text_node("StripWhitespace", "Strip Whitespace", "Strip leading and trailing whitespace from all texts.",
               lambda t: t.strip()),
]


class MergeTextLists:
    """ComfyUI's Merge Text Lists: every text linked to ``texts`` (lists joined) as one output list."""

    DISPLAY_NAME = "Merge Text Lists"
    DESCRIPTION = "Concatenate multiple text lists into one."
    CATEGORY = "dataset/text"
    EXPERIMENTAL = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("texts",)
    OUTPUT_IS_LIST = (True,)
    INPUT_IS_LIST = True
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"texts": ("STRING", {"tooltip": "List of texts to process."})}}

    def execute(self, texts: list[str]) -> tuple[list[str]]:
        return (list(texts),)


def input_subfolders() -> list[str]:
    """The input folder's subfolders (relative, '/'-separated), as ComfyUI's folder combo lists them."""
    root = context.folders().input
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir())


def _dataset_folder(folder: str) -> Path:
    root = context.folders().input.resolve()
    path = (root / folder).resolve()
    if path != root and root not in path.parents:
        raise ValueError(f"input 'folder': {folder!r} leaves the input folder")
    if not path.is_dir():
        raise ValueError(f"input 'folder': no folder {folder!r} in the input folder ({root})")
    return path


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _load(paths: list[Path]) -> list[Any]:
    if not paths:
        raise ValueError("input 'folder': no .png, .jpg, .jpeg or .webp images in it")
    torch = torch_module()
    images = []
    for path in paths:
        context.check_interrupted()
        with Image.open(path) as opened:
            picture = opened.point(lambda v: v * (1 / 255)) if opened.mode == "I" else opened
            array = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
        images.append(torch.from_numpy(array)[None])
    return images


def _folder_input() -> dict[str, Any]:
    return {"folder": (input_subfolders(), {"tooltip": "The folder to load images from."})}


class LoadImageDataSetFromFolder:
    """ComfyUI's Load Image Dataset from Folder: the images of an input subfolder as a list (each ``[1, H, W, 3]``,
    sizes may differ)."""

    DISPLAY_NAME = "Load Image Dataset from Folder"
    CATEGORY = "dataset"
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": _folder_input()}

    def execute(self, folder: str) -> tuple[list[Any]]:
        return (_load(_images_in(_dataset_folder(folder))),)


class LoadImageTextDataSetFromFolder:
    """ComfyUI's Load Image and Text Dataset from Folder: images with their captions (the ``.txt`` beside each,
    empty when absent). A subfolder named ``{N}_{name}`` (kohya-ss layout) contributes its images N times."""

    DISPLAY_NAME = "Load Image and Text Dataset from Folder"
    CATEGORY = "dataset"
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("images", "texts")
    OUTPUT_IS_LIST = (True, True)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": _folder_input()}

    def execute(self, folder: str) -> tuple[list[Any], list[str]]:
        root = _dataset_folder(folder)
        paths = _images_in(root)
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            head = sub.name.split("_")[0]
            paths += _images_in(sub) * (int(head) if head.isdigit() else 1)
        captions = []
        for path in paths:
            caption = path.with_suffix(".txt")
            captions.append(caption.read_text(encoding="utf-8").strip() if caption.is_file() else "")
        return _load(paths), captions


def _output_folder(folder_name: str) -> Path:
    root = context.folders().output.resolve()
    path = (root / folder_name).resolve()
    if path != root and root not in path.parents:
        raise ValueError(f"input 'folder_name': {folder_name!r} would save outside the output folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save_images(images: list[Any], folder: Path, prefix: str) -> list[str]:
    names = []
    for index, image in enumerate(images):
        context.check_interrupted()
        if image.ndim == 4 and image.shape[0] == 1:
            image = image[0]
        if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
            raise ValueError(f"input 'images': item {index} has shape {tuple(image.shape)}; expected one image "
                             f"[1, height, width, channels]")
        array = np.clip(image.detach().cpu().float().numpy() * 255.0, 0, 255).astype(np.uint8)
        name = f"{prefix}_{index:05d}.png"
        with atomic_path(folder / name) as temp:
            Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(temp, format="PNG")
        names.append(name)
    return names


_SAVE_INPUTS = {
    "folder_name": ("STRING", {"default": "dataset",
                               "tooltip": "Name of the folder to save images to (inside output directory)."}),
    "filename_prefix": ("STRING", {"default": "image", "tooltip": "Prefix for saved image filenames."})}


class SaveImageDataSetToFolder:
    """ComfyUI's Save Image Dataset to Folder: ``{prefix}_{index:05d}.png`` in an output subfolder (8-bit by
    truncation, as ComfyUI's)."""

    DISPLAY_NAME = "Save Image Dataset to Folder"
    CATEGORY = "dataset"
    EXPERIMENTAL = True
    OUTPUT_NODE = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ()
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE", {"tooltip": "List of images to save."}), **_SAVE_INPUTS}}

    def execute(self, images: list[Any], folder_name: list[str], filename_prefix: list[str]) -> dict[str, Any]:
        _save_images(images, _output_folder(folder_name[0]), filename_prefix[0])
        return {}


class SaveImageTextDataSetToFolder:
    """ComfyUI's Save Image and Text Dataset to Folder: each image as above and its caption beside it (``.txt``);
    extra images or captions beyond the shorter list get no partner file, as in ComfyUI."""

    DISPLAY_NAME = "Save Image and Text Dataset to Folder"
    CATEGORY = "dataset"
    EXPERIMENTAL = True
    OUTPUT_NODE = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ()
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE", {"tooltip": "List of images to save."}),
                             "texts": ("STRING", {"tooltip": "List of text captions to save."}), **_SAVE_INPUTS}}

    def execute(self, images: list[Any], texts: list[str], folder_name: list[str],
                filename_prefix: list[str]) -> dict[str, Any]:
        folder = _output_folder(folder_name[0])
        for name, caption in zip(_save_images(images, folder, filename_prefix[0]), texts, strict=False):
            with atomic_path(folder / (os.path.splitext(name)[0] + ".txt")) as temp:
                temp.write_text(caption, encoding="utf-8")
        return {}


NODES = {cls.__name__: cls for cls in (*TEXT_NODES, MergeTextLists, LoadImageDataSetFromFolder,
                                        LoadImageTextDataSetFromFolder, SaveImageDataSetToFolder,
                                        SaveImageTextDataSetToFolder)}
