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
from hearth.core.models.registrations import APPLY_MODEL, DIFFUSION_MODEL, run_wrapped, wrappers_of

from . import model_options as options_
from .clip_text import CLIPTextEncoder
from .families import END_TOKEN, SDXL_FOURIER_DIM, START_TOKEN
from .inpaint import concat_cond, ip2p_concat
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
from .unclip import sd2_unclip_adm, sdxl_unclip_pooled

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
        """The ADM vector ``y`` from a conditioning's options (None for SD1/SD2), as ComfyUI builds it: SDXL's
        pooled text and sizes, the refiner's, or unCLIP's image embeddings (``unclip_conditioning``, which SDXL
        also takes in place of the pooled text: "revision")."""
        kind = self.diffusion.family.adm
        if kind is None:
            return None
        seed = int(options.get("seed", 0))
        if kind == "unclip":
            return _to_batch(sd2_unclip_adm(options, self.diffusion.unet.config.adm_in_channels, seed), batch)
        pooled = options.get("pooled_output")
        if options.get("unclip_conditioning"):  # SDXL and its refiner both take "revision" (ComfyUI's sdxl_pooled)
            sizes = 6 if kind == "sdxl" else 5
            pooled = sdxl_unclip_pooled(options, self.diffusion.unet.config.adm_in_channels - sizes * SDXL_FOURIER_DIM,
                                        seed)
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
        wrapped = self._model_wrappers()
        if is_plain(self.model_options) and not self.object_patches and not (
                APPLY_MODEL in wrapped or DIFFUSION_MODEL in wrapped):
            x_in = sampling.calculate_input(sigma, x).to(device)
            t = sampling.timestep(sigma).to(device)
            context, adm = cond.to(device), None if y is None else y.to(device)
            with torch.no_grad():
                control = self._control(options, x_in, sigma.to(device), t, context, adm)
                concat = self.concat(options, x_in)
                if concat is not None:
                    x_in = torch.cat([x_in, concat.to(x_in.dtype)], dim=1)
                out = self.diffusion.unet(x_in, t, context, adm, **_control_kwargs(control))
            return sampling.calculate_denoised(sigma, out.float().to(x.device), x)
        return self._denoise_with_options(x, sigma, cond, y, device, options)

    def _control(self, options: Mapping[str, Any], x_in: torch.Tensor, sigma: torch.Tensor, timestep: torch.Tensor,
                 context: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any] | None:
        """The residuals of the conditioning's ``"control"`` (a ControlNet / T2I-Adapter chain) for this
        evaluation, or None when it has none or is inactive at this sigma. The chain also gets this MODEL (its
        schedule maps start/end percent to sigmas; its family is checked) and how many conditionings share the
        batch (ComfyUI's ``len(cond_or_uncond)``, for broadcasting a hint of several images)."""
        control = options.get("control")
        if control is None:
            return None
        batched = len(options_.cond_or_uncond(options.get("cond_index"), x_in.shape[0]))
        return control.get_control(x_in, sigma, timestep, context, y, model=self, batched_number=batched)

    def concat(self, options: Mapping[str, Any], x_in: torch.Tensor) -> torch.Tensor | None:
        """``c_concat`` for an inpainting or InstructPix2Pix UNet (None for a plain one): ComfyUI's
        ``concat_cond``, see :mod:`hearth_sd.inpaint`."""
        extra = self.diffusion.concat_channels
        if extra == 0:
            return None
        if extra == x_in.shape[1]:  # InstructPix2Pix: the source image's latent
            xl = self.diffusion.family.adm == "sdxl"
            return ip2p_concat(options, x_in, self.process_latent_in if xl else (lambda image: image))
        if extra != 1 + x_in.shape[1]:  # ComfyUI's concat_keys: the mask, then the masked image
            raise ValueError(f"{self.patcher.name}: a UNet taking {extra} channels besides the latent is no "
                             f"inpainting (1 mask + {x_in.shape[1]} image channels) or InstructPix2Pix "
                             f"({x_in.shape[1]}) model")
        return concat_cond(options, x_in, self.process_latent_in)

    # -- ComfyUI's ModelPatcher surface, for custom nodes written against it ----------------------------------

    def _model_wrappers(self) -> dict[str, Any]:
        """ComfyUI's wrapper registries that apply to this MODEL's evaluations: its own (``add_wrapper_with_key``)
        joined with its ``transformer_options["wrappers"]`` (``{kind: {key: [fn, ...]}}``)."""
        tables = [getattr(self, "wrappers", None), self.model_options.get("transformer_options", {}).get("wrappers")]
        joined: dict[str, Any] = {}
        for table in tables:
            for kind, by_key in (table or {}).items():
                for key, fns in by_key.items():
                    joined.setdefault(kind, {}).setdefault(key, [])
                    joined[kind][key] += [fn for fn in fns if not any(fn is seen for seen in joined[kind][key])]
        return {kind: by_key for kind, by_key in joined.items() if any(by_key.values())}

    def _denoise_with_options(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                              y: torch.Tensor | None, device: torch.device, options: Mapping[str, Any]) -> torch.Tensor:
        """One evaluation with the custom nodes' patches of model_options and object_patches (see model_options),
        inside ComfyUI's wrappers: ``model_function_wrapper`` outermost, then the ``APPLY_MODEL`` wrappers around
        ComfyUI's ``BaseModel.apply_model(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)``
        (``executor.class_obj``: ``self.model``), then the ``DIFFUSION_MODEL`` wrappers around the UNet's
        ``forward(x, timesteps, context, y, control, transformer_options)`` (``executor.class_obj``: the UNet)."""
        sampling = self.sampling
        # Which chunks of the batch are positive (0) and negative (1): the guidance batches them together.
        chunks = options_.cond_or_uncond(options.get("cond_index"), x.shape[0])
        # ComfyUI computes the ControlNet residuals and c_concat before apply_model and hands them in as c[...].
        with torch.no_grad():
            scaled = sampling.calculate_input(sigma, x).to(device)
            control = self._control(options, scaled, sigma.to(device), sampling.timestep(sigma).to(device),
                                    cond.to(device), None if y is None else y.to(device))
            concat = self.concat(options, scaled)
        wrappers = self._model_wrappers()
        transformer_options = {**self.model_options.get("transformer_options", {}), "cond_or_uncond": chunks}
        if wrappers:
            transformer_options["wrappers"] = wrappers
        view = self.model
        unet = self.diffusion.unet
        objects = {k: v for k, v in self.object_patches.items() if k.startswith("diffusion_model.")}

        def unet_forward(x_in: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None,
                         y: torch.Tensor | None = None, control: Any = None,
                         transformer_options: Mapping[str, Any] | None = None, **_: Any) -> torch.Tensor:
            patches = transformer_options or {}
            extra = {k: v for k, v in patches.items() if k not in ("patches", "patches_replace")}
            with torch.no_grad(), options_.object_patches(view, objects), \
                    options_.attention_patches(unet, patches, extra):
                return options_.run_unet(unet, x_in, timesteps, context, y, patches, **_control_kwargs(control))

        def base_apply_model(input: torch.Tensor, timestep: torch.Tensor, c_concat: Any = None,
                             c_crossattn: torch.Tensor | None = None, control: Any = None,
                             transformer_options: Mapping[str, Any] | None = None, **kwargs: Any) -> torch.Tensor:
            context = cond if c_crossattn is None else c_crossattn
            adm = kwargs.get("y", y)
            # A wrapper may hand on transformer_options of its own: those are the ones that apply.
            patches = {**(transformer_options_ if transformer_options is None else transformer_options),
                       "sigmas": timestep}
            patches.setdefault("cond_or_uncond", chunks)
            x_in = sampling.calculate_input(timestep, input).to(device)
            if c_concat is not None:
                x_in = torch.cat([x_in, c_concat.to(device, x_in.dtype)], dim=1)
            t = sampling.timestep(timestep).to(device)
            out = run_wrapped(unet_forward, unet, wrappers_of(DIFFUSION_MODEL, patches.get("wrappers")), x_in, t,
                              context.to(device), None if adm is None else adm.to(device), control, patches)
            return sampling.calculate_denoised(timestep, out.float().to(input.device), input)

        transformer_options_ = transformer_options
        # What ComfyUI's calls pass besides the text (c_concat, control only where the conditioning has them).
        given = {name: value for name, value in (("c_concat", concat), ("control", control)) if value is not None}

        def apply_model(input: torch.Tensor, timestep: torch.Tensor, **c: Any) -> torch.Tensor:
            # model_function_wrapper's apply_model(x, sigma, **c), ComfyUI's BaseModel.apply_model inside it.
            c = {"c_crossattn": cond, **({} if y is None else {"y": y}), **given, **c}
            args = [c.pop(name, None) for name in ("c_concat", "c_crossattn", "control")]
            options = c.pop("transformer_options", transformer_options_)
            return run_wrapped(base_apply_model, view, wrappers_of(APPLY_MODEL, options.get("wrappers")),
                               input, timestep, *args, options, **c)

        wrapper = self.model_options.get("model_function_wrapper")
        if wrapper is None:
            return apply_model(x, sigma)
        c = {"c_crossattn": cond, **given, "transformer_options": {**transformer_options, "sigmas": sigma}}
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


def _to_batch(y: torch.Tensor, batch: int) -> torch.Tensor:
    return y if y.shape[0] == batch else y.repeat(-(-batch // y.shape[0]), 1)[:batch]


def _control_kwargs(control: dict[str, Any] | None) -> dict[str, Any]:
    # Only passed when present, so a UNet (or a custom node's replacement) without the argument still runs.
    return {} if control is None else {"control": control}


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

    def tokenize(self, text: str, return_word_ids: bool = False, **kwargs: Any) -> dict[str, list[list[tuple]]]:
        """ComfyUI's tokens: per encoder name (``"l"``, ``"h"``, ``"g"``) a list of 77-token windows of
        ``(token, weight)`` -- ``(token, weight, word_id)`` with ``return_word_ids`` (1-based word of the prompt, 0
        for start, end and padding) -- with an embedding's vector in place of the token where the prompt names
        one. ComfyUI's other keyword arguments (``min_length``...) are accepted and not used."""
        return {name: [chunk.window(return_word_ids) for chunk in chunks]
                for name, chunks in self.clip.tokenize(text).items()}

    @property
    def tokenizer(self) -> _Tokenizer:
        """ComfyUI's ``clip.tokenizer``: ``tokenize_with_weights(text, return_word_ids=False)``."""
        return _Tokenizer(self)

    @property
    def layer_idx(self) -> int | None:
        """ComfyUI's ``clip.layer_idx``: the clip-skip layer (-1 last, -2 penultimate...), None for the family's
        default."""
        return self.clip.layer

    @property
    def cond_stage_model(self) -> ClipStageView:
        """ComfyUI's ``clip.cond_stage_model`` (see :class:`ClipStageView`); one per value, so its clip options
        last between reads as on ComfyUI's object."""
        view = self.__dict__.get("_stage_view")
        if view is None or view.owner is not self:
            view = self.__dict__["_stage_view"] = ClipStageView(self)
        return view

    def tokenize_each(self, texts: Mapping[str, str]) -> dict[str, Any]:
        """A prompt per encoder (``{"l": ..., "g": ...}``), padded to equal length (CLIPTextEncodeSDXL)."""
        return self.clip.tokenize_each(texts)

    def encode_from_tokens(self, tokens: Mapping[str, Any], return_pooled: bool = False,
                           return_dict: bool = False) -> Any:
        """``cond`` ``[1, T, D]``; with ``return_pooled`` ``(cond, pooled)``; with ``return_dict``
        ``{"cond": ..., "pooled_output": ...}`` (ComfyUI's forms)."""
        self.ensure_loaded()
        cond, pooled = self.clip.encode_from_tokens(tokens)  # Hearth's chunks or ComfyUI's windows
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


class _Tokenizer:
    """ComfyUI's ``clip.tokenizer`` of an :class:`SDClip`."""

    def __init__(self, owner: SDClip) -> None:
        self.owner = owner

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False, **kwargs: Any) -> dict[str, Any]:
        return self.owner.tokenize(text, return_word_ids, **kwargs)


class ClipStageView:
    """ComfyUI's ``clip.cond_stage_model`` of an :class:`SDClip` (its SD1ClipModel / SD2ClipModel / SDXLClipModel):
    what advanced prompt encoders (efficiency's, Easy-Use's) call.

    * ``encode_token_weights({"l": windows, ...})`` -> ``(cond, pooled)``, as ``clip.encode_from_tokens``;
    * ``set_clip_options({"layer": n})`` / ``reset_clip_options()``: the clip-skip layer the next encodes use
      (-1 last, -2 penultimate); ComfyUI's ``execution_device`` option is accepted (Hearth's model manager places
      the encoders);
    * ``clip_l`` / ``clip_g`` / ``clip_h``: one encoder alone (:class:`ClipEncoderView`).

    It is not a ``torch.nn.Module``; ``family`` names the CLIP's family, which the compat layer's
    ``comfy.sd1_clip.SD1ClipModel``, ``comfy.sdxl_clip.SDXLClipModel``... answer ``isinstance`` by.
    """

    def __init__(self, owner: SDClip) -> None:
        self.owner = owner
        self.family = owner.family
        self.layer: int | None = None  # set_clip_options' layer; None: the CLIP's own
        for spec in owner.clip.family.text_encoders:
            setattr(self, f"clip_{spec.name}", ClipEncoderView(self, spec))
        self.clip = f"clip_{owner.clip.family.text_encoders[0].name}"  # ComfyUI: the name of its main encoder

    def _clip(self) -> CLIP:
        self.owner.ensure_loaded()
        clip = self.owner.clip
        return clip if self.layer is None else clip.clone(layer=self.layer)

    def set_clip_options(self, options: Mapping[str, Any]) -> None:
        if "layer" in options:
            layer = options["layer"]
            self.layer = None if layer is None else int(layer)

    def reset_clip_options(self) -> None:
        self.layer = None

    def encode_token_weights(self, token_weight_pairs: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return self._clip().encode_from_tokens(token_weight_pairs)

    def __repr__(self) -> str:
        return f"<cond_stage_model of {self.owner!r}>"


class ClipEncoderView:
    """ComfyUI's ``cond_stage_model.clip_l`` (an SDClipModel): one text encoder of an :class:`SDClip`."""

    def __init__(self, stage: ClipStageView, spec: Any) -> None:  # a TextEncoderSpec
        self.stage = stage
        self.name = self.encoder_name = spec.name
        self.family = stage.family  # with encoder_name: what comfy.sd1_clip's classes answer isinstance by
        self.special_tokens = {"start": START_TOKEN, "end": END_TOKEN, "pad": spec.pad_token}
        self._default_layer = spec.default_layer

    @property
    def layer_idx(self) -> int | None:
        """The layer the next encode reads: the clip option, else the CLIP's clip skip, else the family's."""
        for layer in (self.stage.layer, self.stage.owner.clip.layer, self._default_layer):
            if layer is not None:
                return layer
        return None

    @property
    def transformer(self) -> torch.nn.Module:
        return self.stage.owner.clip.encoders[self.name]

    def set_clip_options(self, options: Mapping[str, Any]) -> None:
        self.stage.set_clip_options(options)

    def reset_clip_options(self) -> None:
        self.stage.reset_clip_options()

    def encode_token_weights(self, windows: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cond [1, 77*k, width], pooled)`` of this encoder alone for its windows."""
        return self.stage._clip().encode_with(self.name, windows)

    def __repr__(self) -> str:
        return f"<clip_{self.name} of {self.stage.owner!r}>"


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

    def vae_encode_crop_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """ComfyUI's name for :meth:`crop` (VideoHelperSuite's batched encode crops with it before ``encode``)."""
        return self.crop(pixels)

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
