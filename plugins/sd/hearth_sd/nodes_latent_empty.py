"""Empty latents of other model families, with ComfyUI's names, inputs and shapes: EmptySD3LatentImage,
EmptyFlux2LatentImage, EmptyChromaRadianceLatentImage, EmptyLTXVLatentVideo.

Each is a zero tensor of the shape the family's sampler starts from; no model is needed to make one, so the
nodes exist (and workflows that use them validate) whether or not the family's plugin is installed. ComfyUI's
EmptySD3LatentImage is also what Flux.1, SD3.5, HiDream and other 16-channel, /8 families start from.
"""

from __future__ import annotations

from typing import Any

from hearth.core.images import MAX_RESOLUTION


def _size(default: int, minimum: int, step: int) -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": default, "min": minimum, "max": MAX_RESOLUTION, "step": step})


def _batch() -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": 1, "min": 1, "max": 4096})


def zeros(*shape: int) -> dict[str, Any]:
    import torch

    return {"samples": torch.zeros(shape)}


class EmptySD3LatentImage:
    CATEGORY = "latent/sd3"
    DESCRIPTION = "Zero latents with 16 channels at 1/8 of the image size (SD3, Flux.1 and other 16-channel models)."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"width": _size(1024, 16, 16), "height": _size(1024, 16, 16), "batch_size": _batch()}}

    def generate(self, width: int, height: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        return (zeros(batch_size, 16, height // 8, width // 8),)


class EmptyFlux2LatentImage:
    DISPLAY_NAME = "Empty Flux 2 Latent"
    CATEGORY = "latent"
    DESCRIPTION = "Zero latents with 128 channels at 1/16 of the image size (Flux.2)."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"width": _size(1024, 16, 16), "height": _size(1024, 16, 16), "batch_size": _batch()}}

    def generate(self, width: int, height: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        return (zeros(batch_size, 128, height // 16, width // 16),)


class EmptyChromaRadianceLatentImage:
    CATEGORY = "latent/chroma_radiance"
    DESCRIPTION = "Zero 'latents' in pixel space: 3 channels at the full image size (Chroma Radiance)."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"width": _size(1024, 16, 16), "height": _size(1024, 16, 16), "batch_size": _batch()}}

    def generate(self, width: int, height: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        return (zeros(batch_size, 3, height, width),)


class EmptyLTXVLatentVideo:
    CATEGORY = "model/latent/ltxv"
    DESCRIPTION = "Zero video latents for LTX-Video: 128 channels, 1/32 of the size, one latent frame per 8 frames."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "width": _size(768, 64, 32),
            "height": _size(512, 64, 32),
            "length": ("INT", {"default": 97, "min": 1, "max": MAX_RESOLUTION, "step": 8}),
            "batch_size": _batch(),
        }}

    def generate(self, width: int, height: int, length: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        # The first frame has a latent frame of its own, then every 8 frames share one.
        return (zeros(batch_size, 128, (length - 1) // 8 + 1, height // 32, width // 32),)


NODES = {cls.__name__: cls for cls in (EmptySD3LatentImage, EmptyFlux2LatentImage, EmptyChromaRadianceLatentImage,
                                       EmptyLTXVLatentVideo)}
