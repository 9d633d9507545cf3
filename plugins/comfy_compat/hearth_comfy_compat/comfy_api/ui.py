"""ComfyUI's V3 UI helpers (``comfy_api.latest.ui``): what an output node shows, as ``NodeOutput(ui=...)``.

``ui.PreviewImage(images, cls=cls)`` writes the images to the temp folder (with the prompt and workflow embedded,
read from ``cls.hidden``) and shows them; ``ui.PreviewText("...")`` shows text.
"""

from __future__ import annotations

from typing import Any

from hearth.core.builtin_nodes.image_io import PreviewImage as _PreviewImageNode
from hearth.core.builtin_nodes.image_io import SaveImage as _SaveImageNode


class _UIOutput:
    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class SavedResult(dict):
    """One saved file: ``{"filename", "subfolder", "type"}``."""

    def __init__(self, filename: str, subfolder: str, type: str) -> None:
        super().__init__(filename=filename, subfolder=subfolder, type=type)


class SavedImages(_UIOutput):
    def __init__(self, results: list[Any], is_animated: bool = False) -> None:
        self.results = list(results)
        self.is_animated = is_animated

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"images": [dict(r) for r in self.results]}
        if self.is_animated:
            data["animated"] = [True]
        return data


def _hidden(cls: Any) -> tuple[Any, Any]:
    hidden = getattr(cls, "hidden", None) if cls is not None else None
    return (getattr(hidden, "prompt", None), getattr(hidden, "extra_pnginfo", None))


class ImageSaveHelper:
    """Writes IMAGE batches as PNG files the way SaveImage and PreviewImage do."""

    @staticmethod
    def save_images(images: Any, filename_prefix: str, folder_type: Any = "output", cls: Any = None,
                    compress_level: int = 4) -> list[SavedResult]:
        kind = getattr(folder_type, "value", folder_type)
        node = _PreviewImageNode() if kind == "temp" else _SaveImageNode()
        node.kind, node.compress_level = kind, compress_level
        prompt, extra = _hidden(cls)
        saved = node.save_images(images, filename_prefix, prompt=prompt, extra_pnginfo=extra)["ui"]["images"]
        return [SavedResult(s["filename"], s["subfolder"], s["type"]) for s in saved]

    @staticmethod
    def get_save_images_ui(images: Any, filename_prefix: str, cls: Any = None, compress_level: int = 6
                           ) -> SavedImages:
        return SavedImages(ImageSaveHelper.save_images(images, filename_prefix, "output", cls, compress_level))


class PreviewImage(_UIOutput):
    """Shows an IMAGE batch on the node (written to the temp folder)."""

    def __init__(self, image: Any, animated: bool = False, cls: Any = None, **kwargs: Any) -> None:
        prompt, extra = _hidden(cls)
        node = _PreviewImageNode()
        self.values = node.save_images(image, "ComfyUI", prompt=prompt, extra_pnginfo=extra)["ui"]["images"]
        self.animated = animated

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"images": self.values}
        if self.animated:
            data["animated"] = [True]
        return data


class PreviewMask(PreviewImage):
    """Shows a MASK batch as greyscale images."""

    def __init__(self, mask: Any, animated: bool = False, cls: Any = None, **kwargs: Any) -> None:
        images = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3)
        super().__init__(images, animated, cls, **kwargs)


class PreviewVideo(_UIOutput):
    """Shows saved video files (``[SavedResult, ...]``) on the node."""

    def __init__(self, values: list[Any], **kwargs: Any) -> None:
        self.values = list(values)

    def as_dict(self) -> dict[str, Any]:
        return {"images": [dict(v) for v in self.values], "animated": [True]}


class PreviewText(_UIOutput):
    """Shows text on the node."""

    def __init__(self, value: str, **kwargs: Any) -> None:
        self.value = value

    def as_dict(self) -> dict[str, Any]:
        return {"text": [self.value]}
