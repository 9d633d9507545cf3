"""ComfyUI's UpscaleModelLoader and ImageUpscaleWithModel (comfy_extras/nodes_upscale_model.py) for the ESRGAN family.

ImageUpscaleWithModel tiles as ComfyUI does: 512-pixel tiles overlapping by 32, blended by
:func:`hearth_upscale.tiling.tiled_scale`; when the device runs out of memory the tile is halved and the image
started again, down to 128 (below that the error is raised, naming the node and what to try). The result is
clamped to 0..1. Imported when plugins load: torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

from hearth.core import context
from hearth.core.model_folders import model_folders

TILE = 512
OVERLAP = 32
SMALLEST_TILE = 128


class UpscaleModelLoader:
    """Load an upscale model from ``models/upscale_models`` (``.pth`` or ``.safetensors``)."""

    DISPLAY_NAME = "Load Upscale Model"
    CATEGORY = "loaders"
    RETURN_TYPES = ("UPSCALE_MODEL",)
    FUNCTION = "load_model"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model_name": (model_folders().list("upscale_models"),)}}

    def load_model(self, model_name: str) -> tuple[Any]:
        from .model import load_upscale_model

        path = model_folders().find("upscale_models", model_name)
        return (load_upscale_model(path),)


def _out_of_memory_errors() -> tuple[type[BaseException], ...]:
    import torch

    return (torch.OutOfMemoryError,) if hasattr(torch, "OutOfMemoryError") else (torch.cuda.OutOfMemoryError,)


def _progress(total: int) -> Any:
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        context.progress(done, total)

    return step


class ImageUpscaleWithModel:
    """Upscale images with an UPSCALE_MODEL, tile by tile."""

    DISPLAY_NAME = "Upscale Image (using Model)"
    CATEGORY = "image/upscaling"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",)}}

    def upscale(self, upscale_model: Any, image: Any, tile: int = TILE, overlap: int = OVERLAP) -> tuple[Any]:
        import torch

        from hearth.core.models import default_manager

        from .tiling import tile_count, tiled_scale

        if not isinstance(image, torch.Tensor) or image.ndim != 4:
            raise ValueError(f"ImageUpscaleWithModel: image must be an IMAGE [batch, height, width, channels], "
                             f"got {getattr(image, 'shape', type(image).__name__)}")
        if image.shape[-1] != upscale_model.input_channels:
            raise ValueError(f"ImageUpscaleWithModel: {upscale_model!r} takes {upscale_model.input_channels}-channel "
                             f"images, the image has {image.shape[-1]}; convert it to RGB first")
        pixels = image.movedim(-1, -3)
        default_manager().load(upscale_model.patcher, input_shape=tuple(pixels.shape), dtype=torch.float32)
        pixels = pixels.to(upscale_model.device, torch.float32)
        out_of_memory = _out_of_memory_errors()
        while True:
            total = pixels.shape[0] * tile_count(pixels.shape[3], pixels.shape[2], tile, overlap)
            try:
                result = tiled_scale(pixels, upscale_model, tile=tile, overlap=overlap, scale=upscale_model.scale,
                                     out_channels=upscale_model.output_channels, on_tile=_progress(total))
                break
            except out_of_memory as exc:
                tile //= 2
                if tile < SMALLEST_TILE:
                    raise MemoryError(f"ImageUpscaleWithModel: out of device memory even with {tile * 2}-pixel "
                                      f"tiles; free memory (unload other models) or upscale on the CPU") from exc
        return (torch.clamp(result.movedim(-3, -1), min=0.0, max=1.0),)


NODES = {"UpscaleModelLoader": UpscaleModelLoader, "ImageUpscaleWithModel": ImageUpscaleWithModel}
