"""``comfy.latent_formats``: how each model family's VAE latents are scaled for its denoiser, and previewed.

``process_in`` turns a raw VAE latent into what the model denoises and ``process_out`` turns it back; a preview
maps the latent's channels to RGB with ``latent_rgb_factors`` (``[channels][3]``) plus ``latent_rgb_factors_bias``.
The scale factors and statistics are the families' published ones, the same numbers Hearth's own model plugins use
(an SD1 MODEL's ``model.model.latent_format.scale_factor`` equals ``SD15().scale_factor``).

What differs from ComfyUI: preview factors (``latent_rgb_factors``) are given for SD1/SD2 and SDXL; the other
formats leave them ``None``, so a pack's latent-to-RGB previewer has nothing to colour them by.
"""

from __future__ import annotations

from typing import Any

import torch


class LatentFormat:
    """A family's latent format: ``latent * scale_factor`` in, ``/ scale_factor`` out (the base case)."""

    scale_factor = 1.0
    latent_channels = 4
    latent_dimensions = 2
    latent_rgb_factors: Any = None
    latent_rgb_factors_bias: Any = None
    taesd_decoder_name: str | None = None

    def process_in(self, latent: torch.Tensor) -> torch.Tensor:
        return latent * self.scale_factor

    def process_out(self, latent: torch.Tensor) -> torch.Tensor:
        return latent / self.scale_factor


class _Shifted(LatentFormat):
    """``(latent - shift_factor) * scale_factor`` in, and back out (SD3, Flux)."""

    shift_factor = 0.0

    def process_in(self, latent: torch.Tensor) -> torch.Tensor:
        return (latent - self.shift_factor) * self.scale_factor

    def process_out(self, latent: torch.Tensor) -> torch.Tensor:
        return latent / self.scale_factor + self.shift_factor


class _Normalised(LatentFormat):
    """Per-channel ``(latent - mean) * scale_factor / std`` in, and back out (Playground 2.5, Wan)."""

    latents_mean: tuple[float, ...] = ()
    latents_std: tuple[float, ...] = ()

    def _stats(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1) + (1,) * (latent.ndim - 2)
        mean = torch.as_tensor(self.latents_mean, device=latent.device, dtype=latent.dtype).view(shape)
        std = torch.as_tensor(self.latents_std, device=latent.device, dtype=latent.dtype).view(shape)
        return mean, std

    def process_in(self, latent: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(latent)
        return (latent - mean) * self.scale_factor / std

    def process_out(self, latent: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(latent)
        return latent * std / self.scale_factor + mean


class SD15(LatentFormat):
    """SD1.x and SD2.x."""

    def __init__(self, scale_factor: float = 0.18215) -> None:
        self.scale_factor = scale_factor
        self.latent_rgb_factors = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
                                   [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]]
        self.taesd_decoder_name = "taesd_decoder"


class SDXL(LatentFormat):
    """SDXL and its refiner."""

    scale_factor = 0.13025

    def __init__(self) -> None:
        self.latent_rgb_factors = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068],
                                   [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]]
        self.latent_rgb_factors_bias = [0.1084, -0.0175, -0.0011]
        self.taesd_decoder_name = "taesdxl_decoder"


class SDXL_Playground_2_5(_Normalised):  # noqa: N801 - ComfyUI's name
    scale_factor = 0.5
    latents_mean = (-1.6574, 1.886, -1.383, 2.5155)
    latents_std = (8.4927, 5.9022, 6.5498, 5.2299)
    taesd_decoder_name = "taesdxl_decoder"


class SD_X4(LatentFormat):  # noqa: N801 - ComfyUI's name
    """The x4 upscaler."""

    scale_factor = 0.08333


class SC_Prior(LatentFormat):  # noqa: N801 - ComfyUI's name
    latent_channels = 16


class SC_B(LatentFormat):  # noqa: N801 - ComfyUI's name
    scale_factor = 1.0 / 0.43


class SD3(_Shifted):
    latent_channels = 16
    scale_factor = 1.5305
    shift_factor = 0.0609
    taesd_decoder_name = "taesd3_decoder"


class StableAudio1(LatentFormat):
    latent_channels = 64
    latent_dimensions = 1


class Flux(_Shifted):
    latent_channels = 16
    scale_factor = 0.3611
    shift_factor = 0.1159
    taesd_decoder_name = "taef1_decoder"


class LTXV(LatentFormat):
    latent_channels = 128
    latent_dimensions = 3


class HunyuanVideo(LatentFormat):
    latent_channels = 16
    latent_dimensions = 3
    scale_factor = 0.476986


class Wan21(_Normalised):
    """Wan 2.1 (and the 2.2 14B models): 16 channels of video latents with per-channel statistics."""

    latent_channels = 16
    latent_dimensions = 3
    scale_factor = 1.0
    latents_mean = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
    latents_std = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                   3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)
    taesd_decoder_name = "lighttaew2_1"


# Hearth family name (a MODEL's ``model.latent_format.family``) -> the format class ComfyUI uses for it.
FAMILY_FORMATS: dict[str, type[LatentFormat]] = {
    "sd1": SD15, "sd2": SD15, "sd2_unclip": SD15, "sdxl": SDXL, "sdxl_refiner": SDXL, "sd3": SD3, "flux": Flux, "wan": Wan21,
    "wan21": Wan21,
}
