"""The VAE value of the Wan 2.1 VAE: the protocol the VAE nodes call, over :mod:`hearth_video.wan_vae`'s network.

:func:`hearth_video.wan_vae.load_wan_vae` makes one from a file. Frames go through the network chunk by chunk
(its causal frame cache), the weights come onto the device through the process's model manager, and spatial
tiling (VAEDecodeTiled / VAEEncodeTiled) blends overlapping windows.
"""

from __future__ import annotations

import torch
from torch import nn

from hearth.core.models import ModelValue

from .wan_vae import WanVAEConfig, WanVAEModel, decode_memory_estimate, encode_memory_estimate


def _tiled(fn, x: torch.Tensor, tile: int, overlap: int, up: int, down: int) -> torch.Tensor:
    """``fn`` over overlapping spatial windows of ``x`` ``[B, C, T, H, W]`` (every frame of a window at once),
    blended with weights that fall linearly towards the overlapped edges; ``fn`` scales sizes by ``up / down``."""
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
                result = out.new_zeros(*out.shape[:3], h * up // down, w * up // down)
                weight = out.new_zeros(h * up // down, w * up // down)
            oh, ow = out.shape[-2:]
            mask = out.new_ones(oh, ow)
            n, f = min(ramp, oh, ow), fade.to(out.device)
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


class WanVAE(ModelValue):
    """The VAE value for Wan 2.1, with the protocol the VAE nodes call (``docs/data-types.md``).

    IMAGE frames ``[F, H, W, 3]`` in 0..1 are one clip: :meth:`encode` gives raw latents ``[1, 16, (F-1)//4+1,
    H/8, W/8]`` (extra frames beyond ``1 + 4k`` are dropped, as the causal encoder does); :meth:`decode` turns
    ``[B, 16, T, h, w]`` latents into ``B * (1 + 4 (T-1))`` frames. Both run chunk by chunk through the causal
    cache, so memory follows one chunk, not the clip; the weights come onto the device through the model manager.
    """

    latent_dimensions = 3

    def __init__(self, model: WanVAEModel, patcher, source=None) -> None:
        super().__init__(patcher, source)
        self.model = model

    @property
    def config(self) -> WanVAEConfig:
        return self.model.config

    @property
    def downscale_ratio(self) -> int:
        return self.config.spatial_compression

    @property
    def upscale_ratio(self) -> int:
        return self.config.spatial_compression

    @property
    def temporal_compression(self) -> int:
        return self.config.temporal_compression

    @property
    def latent_channels(self) -> int:
        return self.config.z_dim

    # ComfyUI's names for the same facts, for custom nodes written against its VAE.
    def spacial_compression_decode(self) -> int:
        return self.downscale_ratio

    def spacial_compression_encode(self) -> int:
        return self.downscale_ratio

    def temporal_compression_decode(self) -> int:
        return self.temporal_compression

    @property
    def first_stage_model(self) -> nn.Module:
        return self.model

    @property
    def device(self) -> torch.device:
        return self.patcher.load_device

    @property
    def vae_dtype(self) -> torch.dtype:
        return self.model.dtype

    def decode_memory_required(self, latent_shape: tuple[int, ...], chunked: bool = True) -> int:
        return decode_memory_estimate(tuple(latent_shape), self.config, self.model.dtype, chunked)

    def _load(self, memory_required: int) -> torch.device:
        # Where it computes, even when some weights are streamed from the CPU.
        return self.ensure_loaded(memory_required)

    def _video(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or image.shape[0] == 0:
            raise ValueError(f"the Wan VAE encodes IMAGE frames [F, H, W, 3] (at least one), got shape "
                             f"{list(image.shape)}")
        f = self.downscale_ratio
        h, w = image.shape[1] // f * f, image.shape[2] // f * f
        if h == 0 or w == 0:
            raise ValueError(f"frames of {image.shape[2]}x{image.shape[1]} are smaller than the VAE's {f}-pixel grid")
        top, left = (image.shape[1] % f) // 2, (image.shape[2] % f) // 2
        frames = self.model.usable_frames(image.shape[0])
        clip = image[:frames, top:top + h, left:left + w, :3]
        return clip.permute(3, 0, 1, 2).unsqueeze(0)  # [1, 3, F, H, W]

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Raw latents ``[1, 16, T, h, w]`` of frames ``[F, H, W, 3]`` in 0..1."""
        video = self._video(image)
        device = self._load(encode_memory_estimate(*video.shape[2:], self.config, self.model.dtype))
        with torch.no_grad():
            latent = self.model.encode(video.to(device, torch.float32) * 2 - 1)
        return latent.float().to(image.device)

    def encode_tiled(self, image: torch.Tensor, tile: int = 512, overlap: int = 64) -> torch.Tensor:
        """:meth:`encode` in ``tile``-pixel spatial windows overlapping by ``overlap`` pixels."""
        f = self.downscale_ratio
        tile, overlap = max(f, tile // f * f), overlap // f * f
        video = self._video(image)
        device = self._load(encode_memory_estimate(video.shape[2], tile, tile, self.config, self.model.dtype))
        with torch.no_grad():
            latent = _tiled(self.model.encode, video.to(device, torch.float32) * 2 - 1, tile, overlap, 1, f)
        return latent.to(image.device)

    def _check_latent(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.ndim == 4 and latent.shape[1] == self.latent_channels:
            return latent.unsqueeze(2)  # a batch of images: one-frame clips
        if latent.ndim != 5 or latent.shape[1] != self.latent_channels:
            raise ValueError(f"this Wan VAE ({self.patcher.name}) decodes [B, {self.latent_channels}, T, h, w] video "
                             f"latents, got {list(latent.shape)}: decode with the VAE of the model family that made "
                             f"the latent")
        return latent

    def _frames(self, video: torch.Tensor) -> torch.Tensor:
        # [B, 3, F, H, W] in -1..1 -> [B * F, H, W, 3] in 0..1 on the CPU (IMAGE lives there between nodes).
        return ((video.float() + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 3, 4, 1).flatten(0, 1).cpu()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Frames ``[B * F, H, W, 3]`` in 0..1, decoded one latent frame at a time into a preallocated output."""
        latent = self._check_latent(latent)
        b, _, t, h, w = latent.shape
        f, frames = self.downscale_ratio, 1 + self.temporal_compression * (t - 1)
        device = self._load(self.decode_memory_required((1, *latent.shape[1:])))  # one clip at a time
        out = torch.empty(b * frames, h * f, w * f, 3)
        with torch.no_grad():
            for i in range(b):
                start = i * frames
                for chunk in self.model.decode_chunks(latent[i:i + 1].to(device, torch.float32)):
                    pixels = self._frames(chunk)
                    out[start:start + pixels.shape[0]] = pixels
                    start += pixels.shape[0]
        return out

    def decode_tiled(self, latent: torch.Tensor, tile: int = 64, overlap: int = 8) -> torch.Tensor:
        """:meth:`decode` in ``tile``-latent-pixel spatial windows overlapping by ``overlap`` latent pixels."""
        latent = self._check_latent(latent)
        shape = (*latent.shape[:3], min(tile, latent.shape[3]), min(tile, latent.shape[4]))
        device = self._load(self.decode_memory_required(shape))
        with torch.no_grad():
            video = _tiled(self.model.decode, latent.to(device, torch.float32), tile, overlap, self.downscale_ratio, 1)
        return self._frames(video)

    def __repr__(self) -> str:
        return f"<WanVAE {self.patcher.name!r} base_dim {self.config.base_dim}>"
