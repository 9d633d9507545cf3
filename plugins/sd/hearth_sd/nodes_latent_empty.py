"""Empty latents of other model families, with ComfyUI's names, inputs and shapes: EmptySD3LatentImage,
EmptyFlux2LatentImage, EmptyChromaRadianceLatentImage, EmptyQwenImageLayeredLatentImage, EmptyLTXVLatentVideo,
EmptyHunyuanVideo15Latent, EmptyHiDreamO1LatentImage, EmptyAceStepLatentAudio, EmptyAceStep1.5LatentAudio and
EmptyYuE2LatentAudio.

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


class _EmptyImageLatent:
    """Zero latents of ``CHANNELS`` at ``1/SCALE`` of the image size: the image families' empty-latent nodes differ
    in these two numbers alone."""

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"
    CHANNELS = 16
    SCALE = 8

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"width": _size(1024, 16, 16), "height": _size(1024, 16, 16), "batch_size": _batch()}}

    def generate(self, width: int, height: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        return (zeros(batch_size, self.CHANNELS, height // self.SCALE, width // self.SCALE),)


class EmptySD3LatentImage(_EmptyImageLatent):
    CATEGORY = "latent/sd3"
    DESCRIPTION = "Zero latents with 16 channels at 1/8 of the image size (SD3, Flux.1 and other 16-channel models)."


class EmptyFlux2LatentImage(_EmptyImageLatent):
    DISPLAY_NAME = "Empty Flux 2 Latent"
    CATEGORY = "latent"
    DESCRIPTION = "Zero latents with 128 channels at 1/16 of the image size (Flux.2)."
    CHANNELS = 128
    SCALE = 16


class EmptyChromaRadianceLatentImage(_EmptyImageLatent):
    CATEGORY = "latent/chroma_radiance"
    DESCRIPTION = "Zero 'latents' in pixel space: 3 channels at the full image size (Chroma Radiance)."
    CHANNELS = 3
    SCALE = 1


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


class EmptyQwenImageLayeredLatentImage:
    DISPLAY_NAME = "Empty Qwen Image Layered Latent"
    CATEGORY = "model/latent/qwen"
    DESCRIPTION = "Zero latents for Qwen-Image-Layered: 16 channels at 1/8 of the size, the image plus one per layer."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "width": _size(640, 16, 16),
            "height": _size(640, 16, 16),
            "layers": ("INT", {"default": 3, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
            "batch_size": _batch(),
        }}

    def generate(self, width: int, height: int, layers: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        return (zeros(batch_size, 16, layers + 1, height // 8, width // 8),)


class EmptyHunyuanVideo15Latent:
    CATEGORY = "latent/video"
    DESCRIPTION = "Zero video latents for HunyuanVideo 1.5: 32 channels, 1/16 of the size, one frame per 4 (plus one)."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        # ComfyUI derives its schema from EmptyHunyuanLatentVideo's.
        return {"required": {
            "width": _size(848, 16, 16),
            "height": _size(480, 16, 16),
            "length": ("INT", {"default": 25, "min": 1, "max": MAX_RESOLUTION, "step": 4}),
            "batch_size": _batch(),
        }}

    def generate(self, width: int, height: int, length: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        latent = zeros(batch_size, 32, (length - 1) // 4 + 1, height // 16, width // 16)
        # The spatial factor rides along, as ComfyUI's does, for nodes that size images from the latent.
        return ({**latent, "downscale_ratio_spacial": 16},)


def _seconds(step: float) -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": 120.0, "min": 1.0, "max": 1000.0, "step": step})


def _audio_batch() -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": 1, "min": 1, "max": 4096, "tooltip": "The number of latent images in the batch."})


class EmptyAceStepLatentAudio:
    DISPLAY_NAME = "Empty Ace Step 1.0 Latent Audio"
    CATEGORY = "latent/audio"
    DESCRIPTION = "Zero ACE-Step 1.0 latents: [B, 8, 16, seconds * 44100 / 4096] (rounded down)."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"seconds": _seconds(0.1), "batch_size": _audio_batch()}}

    def generate(self, seconds: float, batch_size: int) -> tuple[dict[str, Any]]:
        length = int(seconds * 44100 / 512 / 8)
        return ({**zeros(batch_size, 8, 16, length), "type": "audio"},)


class EmptyAceStep15LatentAudio:
    DISPLAY_NAME = "Empty Ace Step 1.5 Latent Audio"
    CATEGORY = "latent/audio"
    DESCRIPTION = "Zero ACE-Step 1.5 latents: [B, 64, seconds * 48000 / 1920] (rounded)."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"seconds": _seconds(0.01), "batch_size": _audio_batch()}}

    def generate(self, seconds: float, batch_size: int) -> tuple[dict[str, Any]]:
        return ({**zeros(batch_size, 64, round(seconds * 48000 / 1920)), "type": "audio"},)


class EmptyHiDreamO1LatentImage:
    """ComfyUI's schema as the templates store it (width, height, batch_size); its newest version adds a
    snap_to_predefined switch, which saved workflows do not carry yet."""

    DISPLAY_NAME = "Empty HiDream-O1 Latent Image"
    CATEGORY = "latent/image"
    DESCRIPTION = ("Empty pixel-space latent for HiDream-O1-Image. The model was trained at ~4 megapixels; lower "
                   "resolutions go off-distribution and quality regresses noticeably. Trained resolutions: "
                   "2048x2048, 2304x1728, 1728x2304, 2560x1440, 1440x2560, 2496x1664, 1664x2496, 3104x1312, "
                   "1312x3104, 2304x1792, 1792x2304.")
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        size = {"default": 2048, "min": 64, "max": 4096, "step": 32}
        return {"required": {
            "width": ("INT", dict(size)),
            "height": ("INT", dict(size)),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 64}),
        }}

    def generate(self, width: int, height: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        # Pixel space: three channels at the full size.
        return (zeros(batch_size, 3, height, width),)


# YuE2's acoustic frames: 48 kHz audio, 1920 samples a frame (the seconds widget steps by one frame, 0.04 s).
YUE2_FRAMES_PER_SECOND = 25


class EmptyYuE2LatentAudio:
    DISPLAY_NAME = "Empty YuE2 Latent Audio"
    CATEGORY = "model/latent/yue2"
    DESCRIPTION = "Zero YuE2 latents: [B, 64, seconds * 25] (rounded, at least one frame)."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"seconds": ("FLOAT", {"default": 120.0, "min": 0.04, "max": 1000.0, "step": 0.04}),
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})}}

    def generate(self, seconds: float, batch_size: int) -> tuple[dict[str, Any]]:
        frames = max(1, round(seconds * YUE2_FRAMES_PER_SECOND))
        return ({**zeros(batch_size, 64, frames), "type": "audio", "downscale_ratio_temporal": 1920},)


NODES = {cls.__name__: cls for cls in (EmptySD3LatentImage, EmptyFlux2LatentImage, EmptyChromaRadianceLatentImage,
                                       EmptyQwenImageLayeredLatentImage, EmptyLTXVLatentVideo,
                                       EmptyHunyuanVideo15Latent, EmptyHiDreamO1LatentImage, EmptyAceStepLatentAudio,
                                       EmptyYuE2LatentAudio)} | {
    "EmptyAceStep1.5LatentAudio": EmptyAceStep15LatentAudio}
