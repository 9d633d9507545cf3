"""The MODEL, CLIP and VAE values SD nodes output: loaded parts behind ``core.models.PatchedModel``s.

These implement the protocols of ``docs/data-types.md``, which the samplers and LoRA plugins rely on without
importing this plugin. Each wraps one part of a loaded file with the ``PatchedModel`` that owns its weights:
``clone()`` copies patch lists, never weights; every computation first asks the process's model manager
(:func:`core.models.default_manager`) to make the weights resident on the compute device, patches applied.

Each value also holds the :class:`~hearth_sd.loaders.Loaded` record of the file it came from (``source``), so the
file's weights live exactly as long as some node output uses them: when the executor's cache drops the last one,
they are freed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from core.models import PatchedModel, default_manager

from .model import VAE, DiffusionModel
from .ops import compute_dtype_of
from .sampling import ModelSampling
from .sdxl_conditioning import (
    DEFAULT_AESTHETIC_SCORE,
    DEFAULT_NEGATIVE_AESTHETIC_SCORE,
    DEFAULT_SIZE,
    sdxl_adm,
    sdxl_refiner_adm,
)
from .text_encoding import CLIP


def _is_ready(patcher: PatchedModel) -> bool:
    # Loaded with another clone's patches (a LoRA strength changed) is not ready: load() re-patches.
    return default_manager().is_loaded(patcher) and patcher.weights.applied == patcher.patch_id


def _ensure_loaded(patchers: list[PatchedModel], memory_required: int | None = None) -> None:
    if not all(_is_ready(p) for p in patchers):
        default_manager().load(patchers, memory_required=memory_required)


class SDModel:
    """MODEL: the denoiser of an SD1/SD2/SDXL/refiner checkpoint (the MODEL protocol of docs/data-types.md)."""

    def __init__(self, diffusion: DiffusionModel, patcher: PatchedModel, source: Any = None,
                 model_options: dict[str, Any] | None = None) -> None:
        self.diffusion = diffusion
        self.patcher = patcher
        self.source = source
        self.model_options: dict[str, Any] = model_options if model_options is not None else {}

    def clone(self) -> SDModel:
        options = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.model_options.items()}
        return SDModel(self.diffusion, self.patcher.clone(), self.source, options)

    @property
    def family(self) -> str:
        return self.diffusion.family.name

    @property
    def sampling(self) -> ModelSampling:
        return self.diffusion.sampling

    @property
    def latent_channels(self) -> int:
        return self.diffusion.latent_channels

    def process_latent_in(self, raw: torch.Tensor) -> torch.Tensor:
        return self.diffusion.process_latent_in(raw)

    def process_latent_out(self, scaled: torch.Tensor) -> torch.Tensor:
        return self.diffusion.process_latent_out(scaled)

    def memory_bytes(self) -> int:
        return self.patcher.memory_bytes()

    def prepare(self, batch_shape: tuple[int, ...]) -> torch.device:
        """Make the UNet resident for a batch of ``batch_shape`` (patches applied); returns the compute device."""
        # The manager asks plugins' memory_estimate_for_model first, then the UNet's own estimate.
        default_manager().load(self.patcher, input_shape=tuple(batch_shape), dtype=compute_dtype_of(self.diffusion.unet))
        return self.patcher.load_device

    def adm(self, options: Mapping[str, Any], batch: int) -> torch.Tensor | None:
        """SDXL's ADM vector ``y`` from a conditioning's options (None for SD1/SD2), as ComfyUI builds it."""
        kind = self.diffusion.family.adm
        if kind is None:
            return None
        pooled = options.get("pooled_output")
        if pooled is None:
            raise ValueError(f"an {self.family} model needs the pooled text output in its conditioning; encode the "
                             f"prompt with this checkpoint's CLIP (CLIPTextEncode or CLIPTextEncodeSDXL)")
        if pooled.shape[0] != batch:
            pooled = pooled.repeat(-(-batch // pooled.shape[0]), 1)[:batch]
        width, height = options.get("width", DEFAULT_SIZE), options.get("height", DEFAULT_SIZE)
        crop_w, crop_h = options.get("crop_w", 0), options.get("crop_h", 0)
        if kind == "sdxl":
            return sdxl_adm(pooled, width, height, crop_w, crop_h,
                            options.get("target_width", width), options.get("target_height", height))
        negative = options.get("prompt_type") == "negative"
        score = options.get("aesthetic_score", DEFAULT_NEGATIVE_AESTHETIC_SCORE if negative else DEFAULT_AESTHETIC_SCORE)
        return sdxl_refiner_adm(pooled, width, height, crop_w, crop_h, score)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                options: Mapping[str, Any] | None = None) -> torch.Tensor:
        """One evaluation: the denoised prediction for scaled latents ``x`` at ``sigma`` ``[B]`` (k-diffusion)."""
        options = options or {}
        if not _is_ready(self.patcher):  # samplers call prepare() first; this covers callers that did not
            self.prepare(tuple(x.shape))
        device = self.patcher.load_device
        sampling = self.sampling
        sigma = sigma.reshape(-1).expand(x.shape[0]).to(x.device, torch.float32)
        if cond.shape[0] != x.shape[0]:  # one prompt for the whole batch
            cond = cond.repeat(-(-x.shape[0] // cond.shape[0]), 1, 1)[: x.shape[0]]
        y = self.adm(options, x.shape[0])
        x_in = sampling.calculate_input(sigma, x).to(device)
        t = sampling.timestep(sigma).to(device)
        with torch.no_grad():
            out = self.diffusion.unet(x_in, t, cond.to(device), None if y is None else y.to(device))
        return sampling.calculate_denoised(sigma, out.float().to(x.device), x)

    def __repr__(self) -> str:
        return f"<SDModel {self.family} {self.patcher.name!r}, {len(self.patcher.patches)} patched keys>"


class SDClip:
    """CLIP: the text encoders of a checkpoint (or a text-encoder file) with their patchers.

    ``patchers`` maps the encoder name (``"l"``: CLIP-L, ``"h"``: OpenCLIP-H, ``"g"``: OpenCLIP-bigG) to its
    ``PatchedModel``; ``patcher`` is the first (the only one for SD1 and SD2). ``set_last_layer`` changes this
    value in place, as ComfyUI's ``clip_layer`` does: clone first (CLIPSetLastLayer does).
    """

    def __init__(self, clip: CLIP, patchers: Mapping[str, PatchedModel], source: Any = None) -> None:
        self.clip = clip
        self.patchers = dict(patchers)
        self.source = source

    @property
    def patcher(self) -> PatchedModel:
        return next(iter(self.patchers.values()))

    @property
    def family(self) -> str:
        return self.clip.family.name

    @property
    def layer(self) -> int | None:
        return self.clip.layer

    def clone(self) -> SDClip:
        return SDClip(self.clip.clone(), {name: p.clone() for name, p in self.patchers.items()}, self.source)

    def set_last_layer(self, layer: int) -> SDClip:
        """Read hidden states ``layer`` layers from the end (-1: last). Changes this value; returns it."""
        self.clip = self.clip.set_last_layer(layer)
        return self

    clip_layer = set_last_layer  # ComfyUI's name, for custom nodes written against it

    def tokenize(self, text: str) -> dict[str, Any]:
        return self.clip.tokenize(text)

    def tokenize_each(self, texts: Mapping[str, str]) -> dict[str, Any]:
        """A prompt per encoder (``{"l": ..., "g": ...}``), padded to equal length (CLIPTextEncodeSDXL)."""
        return self.clip.tokenize_each(texts)

    def encode_from_tokens(self, tokens: Mapping[str, Any], return_pooled: bool = False,
                           return_dict: bool = False) -> Any:
        """``cond`` ``[1, T, D]``; with ``return_pooled`` ``(cond, pooled)``; with ``return_dict``
        ``{"cond": ..., "pooled_output": ...}`` (ComfyUI's forms)."""
        _ensure_loaded(list(self.patchers.values()))
        cond, pooled = self.clip.encode_from_tokens(tokens)
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond

    def encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cond [1, 77*k, D], pooled [1, D])``, float32 on the CPU."""
        return self.encode_from_tokens(self.tokenize(text), return_pooled=True)

    def memory_bytes(self) -> int:
        return sum(p.memory_bytes() for p in self.patchers.values())

    def __repr__(self) -> str:
        return f"<SDClip {self.family} encoders {','.join(self.patchers)} layer {self.clip.layer}>"


class SDVAE:
    """VAE: IMAGE ``[B, H, W, 3]`` in 0..1 <-> raw LATENT ``[B, C, H/f, W/f]``, computed where the manager puts it."""

    def __init__(self, vae: VAE, patcher: PatchedModel, source: Any = None) -> None:
        self.vae = vae
        self.patcher = patcher
        self.source = source

    @property
    def downscale_ratio(self) -> int:
        return self.vae.downscale

    @property
    def latent_channels(self) -> int:
        return self.vae.model.config.z_channels

    def clone(self) -> SDVAE:
        return SDVAE(self.vae, self.patcher.clone(), self.source)

    def _working_bytes(self, pixels: int) -> int:
        # The decoder's widest feature maps run at full resolution: ~ch * mult[0] channels, a few alive at once,
        # in float32. A rough bound that keeps big decodes from landing on a full device.
        return 6 * pixels * self.vae.model.config.ch * 4

    def _prepare(self, pixels: int) -> None:
        _ensure_loaded([self.patcher], self._working_bytes(pixels))

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """The image cropped around its centre to a multiple of the downscale factor, as ComfyUI's VAE does."""
        f = self.downscale_ratio
        h, w = image.shape[1] // f * f, image.shape[2] // f * f
        top, left = (image.shape[1] % f) // 2, (image.shape[2] % f) // 2
        return image[:, top:top + h, left:left + w, :]

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        image = self.crop(image)
        self._prepare(image.shape[0] * image.shape[1] * image.shape[2])
        return self.vae.encode(image)

    def _check_latent(self, latent: torch.Tensor) -> None:
        if latent.ndim != 4 or latent.shape[1] != self.latent_channels:
            raise ValueError(f"this VAE ({self.patcher.name}) decodes [B, {self.latent_channels}, h, w] latents, got "
                             f"{list(latent.shape)}: decode with the VAE of the model family that made the latent")

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        self._check_latent(latent)
        f = self.downscale_ratio
        self._prepare(latent.shape[0] * latent.shape[-2] * latent.shape[-1] * f * f)
        return self.vae.decode(latent)

    def encode_tiled(self, image: torch.Tensor, tile: int = 512, overlap: int = 64) -> torch.Tensor:
        """:meth:`encode` in ``tile``-pixel windows overlapping by ``overlap`` pixels."""
        self._prepare(image.shape[0] * tile * tile)
        return self.vae.encode_tiled(self.crop(image), tile, overlap)

    def decode_tiled(self, latent: torch.Tensor, tile: int = 64, overlap: int = 8) -> torch.Tensor:
        """:meth:`decode` in ``tile``-latent-pixel windows overlapping by ``overlap`` latent pixels."""
        self._check_latent(latent)
        f = self.downscale_ratio
        self._prepare(latent.shape[0] * tile * tile * f * f)
        return self.vae.decode_tiled(latent, tile, overlap)

    def memory_bytes(self) -> int:
        return self.patcher.memory_bytes()

    def __repr__(self) -> str:
        return f"<SDVAE {self.patcher.name!r} downscale {self.downscale_ratio}>"
