"""The VAE value of Flux's 16-channel autoencoder: the protocol the VAE nodes call, and loading it from a file.

IMAGE ``[B, H, W, 3]`` in 0..1 <-> raw LATENT ``[B, 16, H/8, W/8]``; the weights come onto the device through the
process's model manager, files go through the core's load cache (read once while some node output holds them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hearth.core.models import (
    Loaded,
    ModelValue,
    PatchedModel,
    compute_dtype,
    default_device,
    load_into,
    load_once,
    load_state_dict,
    read_header,
)

from .ae_model import AEConfig, FluxAutoencoder, config_from_shapes, from_diffusers, is_diffusers_layout

# A file saved whole from a checkpoint may keep its parts under a prefix; the published ae has none.
PREFIXES = ("", "vae.", "first_stage_model.")


def tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int, up: int,
          down: int) -> torch.Tensor:
    """``fn`` over overlapping ``tile`` windows of ``x`` ``[B, C, H, W]``, blended with weights that fall linearly
    towards the overlapped edges (seams fade); ``fn`` scales sizes by ``up / down``."""
    if overlap >= tile:
        raise ValueError(f"tile overlap ({overlap}) must be smaller than the tile ({tile})")
    h, w = x.shape[-2:]

    def starts(size: int) -> list[int]:
        return [0] if size <= tile else [*range(0, size - tile, tile - overlap), size - tile]

    result = weight = None
    ramp = max(1, overlap * up // down)
    fade = torch.linspace(1.0 / (ramp + 1), 1.0, ramp)
    for y0 in starts(h):
        for x0 in starts(w):
            out = fn(x[..., y0:y0 + tile, x0:x0 + tile]).float()
            if result is None:
                result = out.new_zeros(*out.shape[:2], h * up // down, w * up // down)
                weight = out.new_zeros(h * up // down, w * up // down)
            oh, ow = out.shape[-2:]
            mask, n, f = out.new_ones(oh, ow), min(ramp, oh, ow), fade.to(out.device)
            if y0 > 0:
                mask[:n] *= f[:n, None]
            if y0 + tile < h:
                mask[-n:] *= f[:n].flip(0)[:, None]
            if x0 > 0:
                mask[:, :n] *= f[:n]
            if x0 + tile < w:
                mask[:, -n:] *= f[:n].flip(0)
            ys, xs = y0 * up // down, x0 * up // down
            result[..., ys:ys + oh, xs:xs + ow] += out * mask
            weight[ys:ys + oh, xs:xs + ow] += mask
    return result / weight


class FluxVAE(ModelValue):
    """VAE: Flux.1 / Z-Image's autoencoder with the protocol of ``docs/data-types.md``."""

    def __init__(self, model: FluxAutoencoder, patcher: PatchedModel, source: Any = None) -> None:
        super().__init__(patcher, source)
        self.model = model

    @property
    def config(self) -> AEConfig:
        return self.model.config

    @property
    def downscale_ratio(self) -> int:
        return self.config.downscale

    @property
    def upscale_ratio(self) -> int:
        return self.config.downscale

    @property
    def latent_channels(self) -> int:
        return self.config.z_channels

    # ComfyUI's names for the same facts, for custom nodes written against its VAE.
    def spacial_compression_decode(self) -> int:
        return self.downscale_ratio

    def spacial_compression_encode(self) -> int:
        return self.downscale_ratio

    @property
    def first_stage_model(self) -> torch.nn.Module:
        return self.model

    @property
    def device(self) -> torch.device:
        return self.patcher.load_device

    @property
    def vae_dtype(self) -> torch.dtype:
        return self.model.dtype

    def _prepare(self, pixels: int) -> torch.device:
        # The decoder's widest maps run at full resolution with ``ch`` channels, a few alive at once.
        return self.ensure_loaded(8 * pixels * self.config.ch * self.model.dtype.itemsize)

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """The image cropped around its centre to a multiple of 8 pixels (as ComfyUI's VAE does), alpha dropped."""
        f = self.downscale_ratio
        h, w = image.shape[1] // f * f, image.shape[2] // f * f
        if image.ndim != 4 or h == 0 or w == 0:
            raise ValueError(f"the Flux autoencoder encodes IMAGE [B, H, W, 3] of at least {f}x{f} pixels, got "
                             f"shape {list(image.shape)}")
        top, left = (image.shape[1] % f) // 2, (image.shape[2] % f) // 2
        return image[:, top:top + h, left:left + w, :3]

    def vae_encode_crop_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.crop(pixels)

    def _pixels_in(self, image: torch.Tensor, device: torch.device) -> torch.Tensor:
        return image.movedim(-1, 1).to(device, torch.float32) * 2 - 1

    @staticmethod
    def _pixels_out(x: torch.Tensor) -> torch.Tensor:
        return ((x.float() + 1) / 2).clamp(0, 1).movedim(1, -1).cpu()

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Raw latents ``[B, 16, H/8, W/8]`` (float32, CPU) of IMAGE ``[B, H, W, 3]`` in 0..1."""
        image = self.crop(image)
        device = self._prepare(image.shape[0] * image.shape[1] * image.shape[2])
        with torch.no_grad():
            return self.model.encode(self._pixels_in(image, device)).float().cpu()

    def encode_tiled(self, image: torch.Tensor, tile: int = 512, overlap: int = 64, *, tile_x: int | None = None,
                     tile_y: int | None = None) -> torch.Tensor:
        """:meth:`encode` in ``tile``-pixel windows overlapping by ``overlap`` (square: the smaller of ComfyUI's
        ``tile_x`` / ``tile_y`` when given)."""
        f = self.downscale_ratio
        tile = min([t for t in (tile_x, tile_y) if t is not None] or [tile])
        tile, overlap = max(f, tile // f * f), overlap // f * f
        image = self.crop(image)
        device = self._prepare(image.shape[0] * tile * tile)
        with torch.no_grad():
            return tiled(self.model.encode, self._pixels_in(image, device), tile, overlap, 1, f).cpu()

    def _check_latent(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.ndim == 5 and latent.shape[2] == 1:
            latent = latent[:, :, 0]  # a one-frame video latent (Wan-style [B, C, 1, h, w])
        if latent.ndim != 4 or latent.shape[1] != self.latent_channels:
            raise ValueError(f"this Flux autoencoder ({self.patcher.name}) decodes [B, {self.latent_channels}, h, w] "
                             f"latents, got {list(latent.shape)}: decode with the VAE of the model family that made "
                             f"the latent")
        return latent

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """IMAGE ``[B, 8h, 8w, 3]`` in 0..1 (float32, CPU) of raw latents ``[B, 16, h, w]``."""
        latent = self._check_latent(latent)
        f = self.downscale_ratio
        device = self._prepare(latent.shape[0] * latent.shape[-2] * latent.shape[-1] * f * f)
        with torch.no_grad():
            return self._pixels_out(self.model.decode(latent.to(device, torch.float32)))

    def decode_tiled(self, latent: torch.Tensor, tile: int = 64, overlap: int = 8, *, tile_x: int | None = None,
                     tile_y: int | None = None, tile_t: int | None = None,
                     overlap_t: int | None = None) -> torch.Tensor:
        """:meth:`decode` in ``tile``-latent-pixel windows overlapping by ``overlap`` (``tile_t`` / ``overlap_t``
        are for video VAEs: ignored)."""
        latent = self._check_latent(latent)
        tile = min([t for t in (tile_x, tile_y) if t is not None] or [tile])
        f = self.downscale_ratio
        device = self._prepare(latent.shape[0] * tile * tile * f * f)
        with torch.no_grad():
            return self._pixels_out(tiled(self.model.decode, latent.to(device, torch.float32), tile, overlap, f, 1))

    def __repr__(self) -> str:
        return f"<FluxVAE {self.patcher.name!r} z_channels {self.latent_channels}>"


def published_state(path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors in the published ae layout (a prefix stripped, diffusers' names converted)."""
    shapes = read_header(path).shapes
    prefix = next((p for p in PREFIXES if p + "encoder.conv_in.weight" in shapes), None)
    if prefix is None:
        raise ValueError(f"{path}: not an autoencoder (no encoder.conv_in.weight); VAELoader loads Flux's "
                         f"16-channel ae.safetensors here")
    state = load_state_dict(path, prefix=prefix)
    state = {k[len(prefix):]: v for k, v in state.items()}
    return from_diffusers(state) if is_diffusers_layout(state) else state


def load_flux_vae(path: str | Path, device: str | None = None) -> FluxVAE:
    """A Flux.1 / Z-Image ``ae.safetensors`` (published or diffusers layout) as a VAE value (VAELoader)."""
    path = Path(path)
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        state = published_state(path)
        config = config_from_shapes({k: tuple(v.shape) for k, v in state.items()}, str(path))
        with torch.device("meta"):
            model = FluxAutoencoder(config)
        load_into(model, state, source=path)
        model.eval().requires_grad_(False)
        # float16 overflows in this decoder; bfloat16 where the device runs it well, float32 elsewhere.
        dtype = compute_dtype(load_device, (torch.bfloat16, torch.float32))
        if model.dtype != dtype:
            model = model.to(dtype)
        patcher = PatchedModel(model, name=path.name, load_device=load_device)
        return Loaded(path, model=model, patcher=patcher)

    record = load_once("vae", path, make, str(load_device))
    return FluxVAE(record.model, record.patcher.clone(), record)


def load_flux_checkpoint_vae(path: str | Path, device: str | None = None) -> FluxVAE | None:
    """The autoencoder of an all-in-one Flux checkpoint (under ``vae.``, CheckpointLoaderSimple), or None when the
    file holds none."""
    if "vae.encoder.conv_in.weight" not in read_header(Path(path)).shapes:
        return None
    return load_flux_vae(path, device)
