"""``comfy.supported_models_base``: ``BASE``, the model configuration class every ``comfy.supported_models`` entry
(and a pack's own model family) derives from, and ``ClipTarget``.

A configuration says how to recognise a family's UNet (``unet_config`` items that must match, ``required_keys``),
how to sample it (``sampling_settings``, ``model_type``), its latent format, dtypes and key prefixes, and builds
its ``comfy.model_base`` model with ``get_model``.

Packs also test a MODEL's config with ``isinstance(model.model.model_config, comfy.supported_models.SDXL)``.
Hearth's SD models answer ``model.model.model_config`` with a plain object holding their ``unet_config``; a family
configuration (``SD15``, ``SD20``, ``SDXL``, ``SDXLRefiner``) takes it as an instance when that UNet is the
family's: told by its architecture (see :func:`hearth_family_of`), whatever its size, so tiny test models too.
"""

from __future__ import annotations

from typing import Any

import torch

from hearth_comfy_compat.comfy_utils import state_dict_prefix_replace

from . import latent_formats

# The standard 256-wide Fourier embeddings SDXL appends to the pooled text in its ADM vector (6; the refiner 5).
_ADM_EMBEDDING = 256


def hearth_family_of(config: Any) -> str | None:
    """The Hearth family (``"sd1"``, ``"sd2"``, ``"sdxl"``, ``"sdxl_refiner"``) of a Hearth model view's
    ``model_config``, or None for anything else. A config that says its ``family`` (or its latent format's) is taken
    at its word; else the UNet's architecture decides: no ADM input is SD1 (plain attention projections) or SD2 (linear ones); with
    one, the refiner's ADM is its context width plus five embeddings, SDXL's the pooled width plus six."""
    if isinstance(config, BASE):
        return None
    for family in (getattr(config, "family", None), getattr(getattr(config, "latent_format", None), "family", None)):
        if isinstance(family, str):
            return family
    unet = getattr(config, "unet_config", None)
    if not isinstance(unet, dict) or "context_dim" not in unet or "use_linear_in_transformer" not in unet:
        return None
    adm = unet.get("adm_in_channels")
    if adm is None:
        return "sd2" if unet["use_linear_in_transformer"] else "sd1"
    return "sdxl_refiner" if adm - 5 * _ADM_EMBEDDING == unet["context_dim"] else "sdxl"


class _ConfigMeta(type):
    """``isinstance`` of Hearth's model configs with the family configuration they are (module docstring)."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        family = cls.__dict__.get("_hearth_family")
        return family is not None and hearth_family_of(obj) == family


class ClipTarget:
    """The tokenizer and text-encoder classes of a family, with their constructor ``params``."""

    def __init__(self, tokenizer: Any, clip: Any) -> None:
        self.clip = clip
        self.tokenizer = tokenizer
        self.params: dict[str, Any] = {}


class BASE(metaclass=_ConfigMeta):
    """A model family's configuration (see the module docstring); instances hold the detected ``unet_config``."""

    unet_config: dict[str, Any] = {}
    unet_extra_config: dict[str, Any] = {"num_heads": -1, "num_head_channels": 64}
    required_keys: dict[str, Any] = {}
    clip_prefix: list[str] = []
    clip_vision_prefix: str | None = None
    noise_aug_config: dict[str, Any] | None = None
    sampling_settings: dict[str, Any] = {}
    latent_format: Any = latent_formats.LatentFormat
    vae_key_prefix = ["first_stage_model."]
    text_encoder_key_prefix = ["cond_stage_model."]
    supported_inference_dtypes = [torch.float16, torch.bfloat16, torch.float32]
    memory_usage_factor = 2.0
    manual_cast_dtype: torch.dtype | None = None
    custom_operations: Any = None
    scaled_fp8: Any = None
    optimizations: dict[str, Any] = {"fp8": False}

    @classmethod
    def matches(cls, unet_config: dict[str, Any], state_dict: dict[str, Any] | None = None) -> bool:
        """Whether a detected ``unet_config`` (and, given, the state dict's keys) is this family's."""
        if any(key not in unet_config or unet_config[key] != value for key, value in cls.unet_config.items()):
            return False
        return state_dict is None or all(key in state_dict for key in cls.required_keys)

    def model_type(self, state_dict: dict[str, Any], prefix: str = "") -> Any:
        from .model_base import ModelType

        return ModelType.EPS

    def inpaint_model(self) -> bool:
        return self.unet_config.get("in_channels", 4) > 4

    def __init__(self, unet_config: dict[str, Any]) -> None:
        self.unet_config = dict(unet_config)
        self.sampling_settings = dict(self.sampling_settings)
        self.latent_format = self.latent_format()
        self.optimizations = dict(self.optimizations)
        self.unet_config.update(self.unet_extra_config)

    def get_model(self, state_dict: dict[str, Any], prefix: str = "", device: Any = None) -> Any:
        """The family's ``comfy.model_base`` model (``SD21UNCLIP`` when it has a noise augmentor, else
        ``BaseModel``), marked for inpainting when its UNet takes extra input channels."""
        from . import model_base

        if self.noise_aug_config is not None:
            out = model_base.SD21UNCLIP(self, self.noise_aug_config, model_type=self.model_type(state_dict, prefix),
                                        device=device)
        else:
            out = model_base.BaseModel(self, model_type=self.model_type(state_dict, prefix), device=device)
        if self.inpaint_model():
            out.set_inpaint()
        return out

    def process_clip_state_dict(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        return state_dict_prefix_replace(state_dict, {k: "" for k in self.text_encoder_key_prefix}, filter_keys=True)

    def process_unet_state_dict(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        return state_dict

    def process_vae_state_dict(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        return state_dict

    def process_clip_state_dict_for_saving(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        return state_dict_prefix_replace(state_dict, {"": self.text_encoder_key_prefix[0]})

    def process_clip_vision_state_dict_for_saving(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        return state_dict_prefix_replace(state_dict, {"": self.clip_vision_prefix or ""})

    def process_unet_state_dict_for_saving(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        return state_dict_prefix_replace(state_dict, {"": "model.diffusion_model."})

    def process_vae_state_dict_for_saving(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        return state_dict_prefix_replace(state_dict, {"": self.vae_key_prefix[0]})

    def set_inference_dtype(self, dtype: torch.dtype, manual_cast_dtype: torch.dtype | None) -> None:
        self.unet_config["dtype"] = dtype
        self.manual_cast_dtype = manual_cast_dtype
