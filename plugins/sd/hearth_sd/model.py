"""The loaded SD model as the samplers see it (a k-diffusion denoiser) and the VAE as the image nodes see it.

:class:`DiffusionModel` wraps the UNet with its :class:`~hearth_sd.sampling.ModelSampling` and latent scale:
``model(x, sigma, context=..., y=...) -> denoised``, with ``x`` in the sampler's latent space (scaled). :class:`VAE`
converts between ComfyUI's IMAGE tensors (``[B, H, W, 3]`` in ``[0, 1]``) and raw LATENT tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .families import Family
from .sampling import ModelSampling
from .unet import UNetModel
from .vae import AutoencoderKL


@dataclass
class DiffusionModel:
    """UNet + schedule + latent format of one checkpoint.

    ``family.adm`` says which ADM vector ``y`` the UNet needs (None, ``"sdxl"``, ``"sdxl_refiner"``); build it
    with :mod:`hearth_sd.sdxl_conditioning` from the pooled text.
    """

    unet: UNetModel
    family: Family
    sampling: ModelSampling

    @property
    def latent_scale(self) -> float:
        return self.family.latent_scale

    @property
    def latent_channels(self) -> int:
        # The UNet's output: an inpainting UNet takes 5 more input channels (mask + masked image) than it denoises.
        return self.unet.config.out_channels

    @property
    def concat_channels(self) -> int:
        """Input channels beyond the latent (5 for an inpainting model's mask and masked-image latent)."""
        return self.unet.config.in_channels - self.unet.config.out_channels

    def process_latent_in(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw VAE latent -> the scaled latent the UNet works in."""
        return latent * self.latent_scale

    def process_latent_out(self, latent: torch.Tensor) -> torch.Tensor:
        """Scaled latent -> raw VAE latent."""
        return latent / self.latent_scale

    def memory_required(self, input_shape: tuple[int, ...] | None, dtype: torch.dtype | None = None) -> int:
        """Bytes one forward needs beyond the weights, for a latent batch of ``input_shape`` ``[B, C, H, W]``.

        The ``memory_estimate`` to give ``hearth.core.models.PatchedModel``. Counted: the skip connections the UNet
        keeps, a working set of ~16 feature maps at full latent resolution (GEGLU's 8x-wide projection and the
        tensors around it), and one attention matrix at the first attention level (what a kernel without
        memory-efficient attention materialises), plus half again for the allocator.
        """
        if input_shape is None:
            input_shape = (2, self.latent_channels, 128, 128)  # two 1024px images (CFG): a generous default
        c = self.unet.config
        b, _, h, w = input_shape
        size = torch.finfo(dtype or torch.float16).bits // 8
        skips = 0
        attention = 0
        for level, mult in enumerate(c.channel_mult):
            area = (h >> level) * (w >> level)
            skips += (c.num_res_blocks + 1) * c.model_channels * mult * area
            if c.transformer_depth[level] and not attention:
                heads, _ = c.heads_for(c.model_channels * mult)
                attention = heads * area * area
        working = 16 * c.model_channels * h * w
        return int(1.5 * b * size * (skips + working + attention))

    def __call__(
        self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The denoised latent for noisy ``x`` at ``sigma`` (``[B]`` or scalar), k-diffusion's model interface."""
        sigma = sigma.reshape(-1).expand(x.shape[0]).to(x.device, torch.float32)
        param = next(self.unet.parameters())
        x_in = self.sampling.calculate_input(sigma, x).to(param.device)
        t = self.sampling.timestep(sigma).to(param.device)
        out = self.unet(x_in, t, context.to(param.device), None if y is None else y.to(param.device))
        return self.sampling.calculate_denoised(sigma, out.float().to(x.device), x)


def tiled(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int, up: int, down: int
) -> torch.Tensor:
    """``fn`` applied to overlapping ``tile``-sized windows of ``x`` (``[B, C, H, W]``), blended into one result.

    ``fn`` maps a window of size ``(h, w)`` to ``(h * up // down, w * up // down)``. Where windows overlap, their
    outputs are mixed with weights that fall linearly towards each window's inner edges, so seams fade instead of
    showing. Peak memory follows the tile size, not the image size (VAEDecodeTiled / VAEEncodeTiled).
    """
    if overlap >= tile:
        raise ValueError(f"tile overlap ({overlap}) must be smaller than the tile ({tile})")
    b, _, h, w = x.shape

    def starts(size: int) -> list[int]:
        if size <= tile:
            return [0]
        step = tile - overlap
        out = list(range(0, size - tile, step))
        return out + [size - tile]

    result = weight = None
    ramp = max(1, overlap * up // down)
    for y0 in starts(h):
        for x0 in starts(w):
            out = fn(x[:, :, y0 : y0 + tile, x0 : x0 + tile])
            if result is None:
                result = out.new_zeros(b, out.shape[1], h * up // down, w * up // down)
                weight = out.new_zeros(1, 1, *result.shape[2:])
            oh, ow = out.shape[2:]
            mask = out.new_ones(1, 1, oh, ow)
            # Feather only the edges that another window overlaps; the image border keeps full weight.
            fade = torch.linspace(1.0 / (ramp + 1), 1.0, ramp, device=out.device, dtype=out.dtype)
            n = min(ramp, oh, ow)
            if y0 > 0:
                mask[:, :, :n, :] *= fade[:n].view(1, 1, -1, 1)
            if y0 + tile < h:
                mask[:, :, -n:, :] *= fade[:n].flip(0).view(1, 1, -1, 1)
            if x0 > 0:
                mask[:, :, :, :n] *= fade[:n].view(1, 1, 1, -1)
            if x0 + tile < w:
                mask[:, :, :, -n:] *= fade[:n].flip(0).view(1, 1, 1, -1)
            ty, tx = y0 * up // down, x0 * up // down
            result[:, :, ty : ty + oh, tx : tx + ow] += out * mask
            weight[:, :, ty : ty + oh, tx : tx + ow] += mask
    return result / weight


class VAE:
    """Image <-> latent, in ComfyUI's tensor conventions."""

    def __init__(self, model: AutoencoderKL):
        self.model = model

    @property
    def downscale(self) -> int:
        return self.model.config.downscale

    @property
    def device(self) -> torch.device:
        return self.model.post_quant_conv.weight.device

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """IMAGE ``[B, H, W, C]`` in ``[0, 1]`` -> raw latent ``[B, z, H/8, W/8]`` (float32, CPU).

        Sizes that are not a multiple of the downscale factor are cropped to one, as ComfyUI does; an alpha
        channel is dropped.
        """
        f = self.downscale
        h, w = pixels.shape[1] // f * f, pixels.shape[2] // f * f
        if h == 0 or w == 0:
            raise ValueError(f"image {pixels.shape[2]}x{pixels.shape[1]} is smaller than the VAE's {f}-pixel cell")
        x = pixels[:, :h, :w, :3].movedim(-1, 1).to(self.device, torch.float32) * 2 - 1
        with torch.no_grad():
            # The encoder keeps the channels-last layout of the moved image; ComfyUI copies its latent into a fresh
            # (contiguous) tensor, and so does this: the UNet's convolutions round a channels-last input differently,
            # which moved an img2img latent by 1e-4 and a pixel by one level.
            return self.model.encode(x).float().cpu().contiguous()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latent ``[B, z, h, w]`` -> IMAGE ``[B, 8h, 8w, 3]`` in ``[0, 1]`` (float32, CPU)."""
        with torch.no_grad():
            x = self.model.decode(latent.to(self.device, torch.float32)).float()
        return ((x + 1) / 2).clamp(0, 1).movedim(1, -1).cpu()

    def decode_tiled(self, latent: torch.Tensor, tile: int = 64, overlap: int = 8) -> torch.Tensor:
        """:meth:`decode` in overlapping latent tiles of ``tile`` x ``tile`` (``VAEDecodeTiled``: tile_size / 8)."""
        with torch.no_grad():
            x = tiled(self.model.decode, latent.to(self.device, torch.float32), tile, overlap, self.downscale, 1)
        return ((x.float() + 1) / 2).clamp(0, 1).movedim(1, -1).cpu()

    def encode_tiled(self, pixels: torch.Tensor, tile: int = 512, overlap: int = 64) -> torch.Tensor:
        """:meth:`encode` in overlapping pixel tiles (``VAEEncodeTiled``); tile and overlap are multiples of 8."""
        f = self.downscale
        if tile % f or overlap % f:
            raise ValueError(f"tile ({tile}) and overlap ({overlap}) must be multiples of {f} pixels")
        h, w = pixels.shape[1] // f * f, pixels.shape[2] // f * f
        x = pixels[:, :h, :w, :3].movedim(-1, 1).to(self.device, torch.float32) * 2 - 1
        with torch.no_grad():
            return tiled(self.model.encode, x, tile, overlap, 1, f).float().cpu().contiguous()
