"""The MODEL, CLIP and VAE values SD nodes output: loaded parts behind ``hearth.core.models.PatchedModel``s.

These implement the protocols of ``docs/data-types.md``, which the samplers and LoRA plugins rely on without
importing this plugin. Each is a :class:`hearth.core.models.ModelValue` (ComfyUI's ModelPatcher surface: clone,
weight patches, ``model_options`` setters, object patches, devices, readiness) over the ``PatchedModel`` that owns
one part's weights; this module adds what is SD's: the UNet evaluation and its patches, text encoding, the VAE.

Each value also holds the load cache's record of the file it came from (``source``), so the file's weights live
exactly as long as some node output uses them: when the executor's cache drops the last one, they are freed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hearth.core.models import ModelValue, PatchedModel, default_manager
from hearth.core.models.model_value import is_plain

from . import model_options as options_
from .clip_text import CLIPTextEncoder
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

_UNET_PREFIX = "diffusion_model."  # ComfyUI's key prefix for the UNet's weights inside a MODEL


class SDModel(ModelValue):
    """MODEL: the denoiser of an SD1/SD2/SDXL/refiner checkpoint (the MODEL protocol of docs/data-types.md)."""

    WEIGHT_PREFIX = _UNET_PREFIX

    def __init__(self, diffusion: DiffusionModel, patcher: PatchedModel, source: Any = None,
                 model_options: dict[str, Any] | None = None, object_patches: dict[str, Any] | None = None) -> None:
        super().__init__(patcher, source, model_options=model_options, object_patches=object_patches)
        self.diffusion = diffusion

    @property
    def family(self) -> str:
        return self.diffusion.family.name

    @property
    def sampling(self) -> ModelSampling:
        return self.object_patches.get("model_sampling", self.diffusion.sampling)

    @property
    def latent_channels(self) -> int:
        return self.diffusion.latent_channels

    def process_latent_in(self, raw: torch.Tensor) -> torch.Tensor:
        return self.diffusion.process_latent_in(raw)

    def process_latent_out(self, scaled: torch.Tensor) -> torch.Tensor:
        return self.diffusion.process_latent_out(scaled)

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
        if not self.is_ready():  # samplers call prepare() first; this covers callers that did not
            self.prepare(tuple(x.shape))
        device = self.patcher.load_device
        sampling = self.sampling
        sigma = sigma.reshape(-1).expand(x.shape[0]).to(x.device, torch.float32)
        if cond.shape[0] != x.shape[0]:  # one prompt for the whole batch
            cond = cond.repeat(-(-x.shape[0] // cond.shape[0]), 1, 1)[: x.shape[0]]
        y = self.adm(options, x.shape[0])
        if is_plain(self.model_options) and not self.object_patches:
            x_in = sampling.calculate_input(sigma, x).to(device)
            t = sampling.timestep(sigma).to(device)
            with torch.no_grad():
                out = self.diffusion.unet(x_in, t, cond.to(device), None if y is None else y.to(device))
            return sampling.calculate_denoised(sigma, out.float().to(x.device), x)
        return self._denoise_with_options(x, sigma, cond, y, device, options.get("cond_index"))

    # -- ComfyUI's ModelPatcher surface, for custom nodes written against it ----------------------------------

    def _denoise_with_options(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                              y: torch.Tensor | None, device: torch.device, cond_index: Any = None) -> torch.Tensor:
        # One evaluation with the custom nodes' patches of model_options and object_patches (see model_options).
        sampling = self.sampling
        # Which chunks of the batch are positive (0) and negative (1): the guidance batches them together.
        chunks = options_.cond_or_uncond(cond_index, x.shape[0])
        transformer_options = {**self.model_options.get("transformer_options", {}), "cond_or_uncond": chunks}
        view = self.model
        objects = {k: v for k, v in self.object_patches.items() if k.startswith("diffusion_model.")}

        def apply_model(input: torch.Tensor, timestep: torch.Tensor, **c: Any) -> torch.Tensor:
            context, adm = c.get("c_crossattn", cond), c.get("y", y)
            # A wrapper may hand on transformer_options of its own: those are the ones that apply.
            patches = {**c.get("transformer_options", transformer_options), "sigmas": timestep}
            patches.setdefault("cond_or_uncond", chunks)
            extra = {k: v for k, v in patches.items() if k not in ("patches", "patches_replace")}
            x_in = sampling.calculate_input(timestep, input).to(device)
            t = sampling.timestep(timestep).to(device)
            with torch.no_grad(), options_.object_patches(view, objects), \
                    options_.attention_patches(self.diffusion.unet, patches, extra):
                out = options_.run_unet(self.diffusion.unet, x_in, t, context.to(device),
                                        None if adm is None else adm.to(device), patches)
            return sampling.calculate_denoised(timestep, out.float().to(input.device), input)

        wrapper = self.model_options.get("model_function_wrapper")
        if wrapper is None:
            return apply_model(x, sigma)
        c = {"c_crossattn": cond, "transformer_options": {**transformer_options, "sigmas": sigma}}
        if y is not None:
            c["y"] = y
        return wrapper(apply_model, {"input": x, "timestep": sigma, "c": c, "cond_or_uncond": chunks})

    @property
    def model(self) -> options_.BaseModelView:
        """ComfyUI's ``model_patcher.model``: ``model_sampling``, ``diffusion_model``, ``latent_format``..."""
        return options_.BaseModelView(self)

    def model_dtype(self) -> torch.dtype:
        return compute_dtype_of(self.diffusion.unet)

    def accepts_object_patch(self, name: str) -> bool:
        """``model_sampling``, or a module under ``diffusion_model.`` (replaced while this clone evaluates)."""
        return name == "model_sampling" or name.startswith("diffusion_model.")

    def _object_patch_hint(self) -> str:
        return " or a name under 'diffusion_model.'"

    def __repr__(self) -> str:
        return f"<SDModel {self.family} {self.patcher.name!r}, {len(self.patcher.patches)} patched keys>"


class SDClip(ModelValue):
    """CLIP: the text encoders of a checkpoint (or a text-encoder file) with their patchers.

    ``patchers`` maps the encoder name (``"l"``: CLIP-L, ``"h"``: OpenCLIP-H, ``"g"``: OpenCLIP-bigG) to its
    ``PatchedModel``; ``patcher`` is the first (the only one for SD1 and SD2). ``set_last_layer`` changes this
    value in place, as ComfyUI's ``clip_layer`` does: clone first (CLIPSetLastLayer does).
    """

    def __init__(self, clip: CLIP, patchers: Mapping[str, PatchedModel], source: Any = None) -> None:
        super().__init__(source=source, patchers=patchers)
        self.clip = clip

    @property
    def patchers(self) -> dict[str, PatchedModel]:
        """The encoders' ``PatchedModel``s by name (this value's own: patch them on a clone)."""
        return self._patchers

    @property
    def family(self) -> str:
        return self.clip.family.name

    @property
    def layer(self) -> int | None:
        return self.clip.layer

    def clone(self) -> SDClip:
        twin = super().clone()
        twin.clip = self.clip.clone()  # its own last layer: set_last_layer changes a value in place
        return twin

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
        self.ensure_loaded()
        cond, pooled = self.clip.encode_from_tokens(tokens)
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond

    # -- ComfyUI's CLIP weight patches (CLIPMergeSimple and LoRA-like packs) ------------------------------------

    def key_prefix(self, name: str) -> str:
        # ComfyUI names CLIP-L's weights clip_l.transformer.<Hugging Face key>; the OpenCLIP encoders keep their
        # own layout here, under clip_<name>.
        return f"clip_{name}.transformer." if isinstance(self.patchers[name].module, CLIPTextEncoder) else f"clip_{name}."

    def encode_from_tokens_scheduled(self, tokens: Mapping[str, Any],
                                     add_dict: Mapping[str, Any] | None = None) -> list[list[Any]]:
        """The CONDITIONING of ``tokens``: ``[[cond, {"pooled_output": pooled, **add_dict}]]`` (ComfyUI's form)."""
        cond, pooled = self.encode_from_tokens(tokens, return_pooled=True)
        return [[cond, {"pooled_output": pooled, **(add_dict or {})}]]

    def encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cond [1, 77*k, D], pooled [1, D])``, float32 on the CPU."""
        return self.encode_from_tokens(self.tokenize(text), return_pooled=True)

    def __repr__(self) -> str:
        return f"<SDClip {self.family} encoders {','.join(self.patchers)} layer {self.clip.layer}>"


def _square_tile(tile: int, tile_x: int | None, tile_y: int | None) -> int:
    given = [t for t in (tile_x, tile_y) if t is not None]
    return min(given) if given else tile


class SDVAE(ModelValue):
    """VAE: IMAGE ``[B, H, W, 3]`` in 0..1 <-> raw LATENT ``[B, C, H/f, W/f]``, computed where the manager puts it."""

    def __init__(self, vae: VAE, patcher: PatchedModel, source: Any = None) -> None:
        super().__init__(patcher, source)
        self.vae = vae

    @property
    def downscale_ratio(self) -> int:
        return self.vae.downscale

    @property
    def latent_channels(self) -> int:
        return self.vae.model.config.z_channels

    # ComfyUI's names for the same facts, for custom nodes written against its VAE.
    @property
    def upscale_ratio(self) -> int:
        return self.downscale_ratio

    def spacial_compression_decode(self) -> int:
        return self.downscale_ratio

    def spacial_compression_encode(self) -> int:
        return self.downscale_ratio

    @property
    def first_stage_model(self) -> torch.nn.Module:
        return self.vae.model

    @property
    def device(self) -> torch.device:
        return self.patcher.load_device

    @property
    def vae_dtype(self) -> torch.dtype:
        return compute_dtype_of(self.vae.model)

    def _working_bytes(self, pixels: int) -> int:
        # The decoder's widest feature maps run at full resolution: ~ch * mult[0] channels, a few alive at once,
        # in float32. A rough bound that keeps big decodes from landing on a full device.
        return 6 * pixels * self.vae.model.config.ch * 4

    def _prepare(self, pixels: int) -> None:
        self.ensure_loaded(self._working_bytes(pixels))

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

    def encode_tiled(self, image: torch.Tensor, tile: int = 512, overlap: int = 64, *, tile_x: int | None = None,
                     tile_y: int | None = None) -> torch.Tensor:
        """:meth:`encode` in ``tile``-pixel windows overlapping by ``overlap`` pixels.

        ``tile_x`` / ``tile_y``: ComfyUI's names; tiles are square here, so the smaller one is the tile.
        """
        tile = _square_tile(tile, tile_x, tile_y)
        self._prepare(image.shape[0] * tile * tile)
        return self.vae.encode_tiled(self.crop(image), tile, overlap)

    def decode_tiled(self, latent: torch.Tensor, tile: int = 64, overlap: int = 8, *, tile_x: int | None = None,
                     tile_y: int | None = None, tile_t: int | None = None,
                     overlap_t: int | None = None) -> torch.Tensor:
        """:meth:`decode` in ``tile``-latent-pixel windows overlapping by ``overlap`` latent pixels.

        ``tile_x`` / ``tile_y`` (latent pixels): ComfyUI's names; tiles are square here, so the smaller one is the
        tile. ComfyUI's ``tile_t`` / ``overlap_t`` are for video VAEs and are ignored for an image latent.
        """
        tile = _square_tile(tile, tile_x, tile_y)
        self._check_latent(latent)
        f = self.downscale_ratio
        self._prepare(latent.shape[0] * tile * tile * f * f)
        return self.vae.decode_tiled(latent, tile, overlap)

    def __repr__(self) -> str:
        return f"<SDVAE {self.patcher.name!r} downscale {self.downscale_ratio}>"
