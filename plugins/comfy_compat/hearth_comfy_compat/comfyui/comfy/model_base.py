"""``comfy.model_base``: ``BaseModel`` (a diffusion network with its sampling and latent format), ``ModelType``,
the families' classes packs test with ``isinstance`` (``SDXL``, ``SDXLRefiner``, ``SD21UNCLIP``...), and
``model_sampling(model_config, model_type)``.

A pack may build a ``BaseModel`` itself, around its own network (``unet_model=``), wrap it in a
``comfy.model_patcher.ModelPatcher`` and hand it to Hearth's samplers: ``apply_model`` does ComfyUI's evaluation
(input scaling, timestep, ``calculate_denoised``) and runs the ``APPLY_MODEL`` and ``DIFFUSION_MODEL`` wrappers of
``comfy.patcher_extension`` found in ``transformer_options``.

Hearth's own MODEL values answer ``model.model`` with their family's view (``model_sampling``, ``latent_format``,
``diffusion_model``...), not with one of these classes; ``isinstance(model.model, BaseModel)`` is true for them,
and ``isinstance(model.model, SDXL)`` (and the other families here) when the view's family is that one.

What differs from ComfyUI: without ``unet_model`` no network is built (ComfyUI's ``openaimodel.UNetModel`` is not
Hearth's; Hearth's SD plugin loads its UNet itself); the unCLIP noise augmentor is not provided.
"""

from __future__ import annotations

import enum
import importlib
import math
from typing import Any

import torch

from hearth_comfy_compat.hook import lacking

from . import conds
from .model_sampling import (
    CONST,
    EDM,
    EPS,
    IMG_TO_IMG,
    V_PREDICTION,
    ModelSamplingContinuousEDM,
    ModelSamplingContinuousV,
    ModelSamplingDiscrete,
    ModelSamplingDiscreteFlow,
    ModelSamplingFlux,
    StableCascadeSampling,
)
from .patcher_extension import WrapperExecutor, WrappersMP, get_all_wrappers


class ModelType(enum.Enum):
    """How a network's output is read (ComfyUI's members and values)."""

    EPS = 1
    V_PREDICTION = 2
    V_PREDICTION_EDM = 3
    STABLE_CASCADE = 4
    EDM = 5
    FLOW = 6
    V_PREDICTION_CONTINUOUS = 7
    FLUX = 8
    IMG_TO_IMG = 9
    FLOW_COSMOS = 10


# model type -> (schedule, prediction type): the two parts ComfyUI's sampling objects are made of.
_SAMPLING: dict[ModelType, tuple[type, type]] = {
    ModelType.EPS: (ModelSamplingDiscrete, EPS),
    ModelType.V_PREDICTION: (ModelSamplingDiscrete, V_PREDICTION),
    ModelType.V_PREDICTION_EDM: (ModelSamplingContinuousEDM, V_PREDICTION),
    ModelType.EDM: (ModelSamplingContinuousEDM, EDM),
    ModelType.FLOW: (ModelSamplingDiscreteFlow, CONST),
    ModelType.STABLE_CASCADE: (StableCascadeSampling, EPS),
    ModelType.V_PREDICTION_CONTINUOUS: (ModelSamplingContinuousV, V_PREDICTION),
    ModelType.FLUX: (ModelSamplingFlux, CONST),
    ModelType.IMG_TO_IMG: (ModelSamplingDiscrete, IMG_TO_IMG),
}


def model_sampling(model_config: Any, model_type: ModelType) -> torch.nn.Module:
    """The sampling object of ``model_type`` with the config's ``sampling_settings``."""
    if model_type not in _SAMPLING:
        raise lacking("comfy.model_base.model_sampling", f"no sampling for {model_type}")
    schedule, prediction = _SAMPLING[model_type]
    combined = type("ModelSampling", (schedule, prediction), {})
    return combined(model_config)


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """Sinusoidal embeddings ``[N, dim]`` of ``timesteps`` ``[N]``: cosines then sines (the LDM layout)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class Timestep(torch.nn.Module):
    """``timestep_embedding`` as a module (SDXL's size and score embedder)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return timestep_embedding(t, self.dim)


def _family(view: Any) -> str | None:
    return getattr(getattr(view, "latent_format", None), "family", None)


def _is_hearth_view(obj: Any) -> bool:
    # What Hearth's model families answer for MODEL.model (see the module docstring).
    return not isinstance(obj, torch.nn.Module) and all(
        hasattr(obj, name) for name in ("model_sampling", "latent_format", "diffusion_model", "process_latent_in"))


class _ModelMeta(type):
    """``isinstance`` of Hearth's model views: any is a ``BaseModel``; a family class takes its family's."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        if not _is_hearth_view(obj):
            return False
        families = cls.__dict__.get("_hearth_families")
        return cls.__dict__.get("_any_hearth_view", False) or (families is not None and _family(obj) in families)


# ComfyUI's UNet, served by this layer when it is (a ComfyUI name, not a package Hearth depends on).
_COMFY_UNET_MODULE = "comfy.ldm.modules.diffusionmodules.openaimodel"


def _default_unet() -> Any:
    try:
        return importlib.import_module(_COMFY_UNET_MODULE).UNetModel
    except (ImportError, AttributeError) as error:
        raise lacking(f"{_COMFY_UNET_MODULE}.UNetModel", "to build a BaseModel's network give unet_model= (your "
                      "network's class), or load the checkpoint with a loader node") from error


class BaseModel(torch.nn.Module, metaclass=_ModelMeta):
    """A diffusion network with its sampling object and latent format (see the module docstring).

    :param model_config: a ``comfy.supported_models_base.BASE`` (``unet_config``, ``latent_format``,
        ``sampling_settings``, ``manual_cast_dtype``, ``custom_operations``, ``memory_usage_factor``).
    :param unet_model: the network's class, built as ``unet_model(**unet_config, device=..., operations=...)``
        unless ``unet_config["disable_unet_model_creation"]``.
    """

    _any_hearth_view = True

    def __init__(self, model_config: Any, model_type: ModelType = ModelType.EPS, device: Any = None,
                 unet_model: Any = None) -> None:
        super().__init__()
        unet_config = model_config.unet_config
        self.latent_format = model_config.latent_format
        self.model_config = model_config
        self.manual_cast_dtype = getattr(model_config, "manual_cast_dtype", None)
        self.device = device
        self.current_patcher = None
        if not unet_config.get("disable_unet_model_creation", False):
            from .ops import pick_operations

            operations = getattr(model_config, "custom_operations", None) or pick_operations(
                unet_config.get("dtype"), self.manual_cast_dtype)
            network = unet_model if unet_model is not None else _default_unet()
            self.diffusion_model = network(**unet_config, device=device, operations=operations)
        self.model_type = model_type
        self.model_sampling = model_sampling(model_config, model_type)
        self.adm_channels = unet_config.get("adm_in_channels") or 0
        self.concat_keys: tuple[str, ...] = ()
        self.memory_usage_factor = getattr(model_config, "memory_usage_factor", 2.0)
        self.memory_usage_factor_conds: tuple[str, ...] = ()

    # -- evaluation --------------------------------------------------------------------------------------------

    def apply_model(self, x: torch.Tensor, t: torch.Tensor, c_concat: torch.Tensor | None = None,
                    c_crossattn: torch.Tensor | None = None, control: Any = None,
                    transformer_options: dict[str, Any] | None = None, **kwargs: Any) -> torch.Tensor:
        """The denoised latent for noisy ``x`` at sigma ``t``, through the ``APPLY_MODEL`` wrappers."""
        transformer_options = {} if transformer_options is None else transformer_options
        wrappers = get_all_wrappers(WrappersMP.APPLY_MODEL, transformer_options)
        return WrapperExecutor.new_class_executor(self._apply_model, self, wrappers).execute(
            x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

    def _apply_model(self, x: torch.Tensor, t: torch.Tensor, c_concat: torch.Tensor | None = None,
                     c_crossattn: torch.Tensor | None = None, control: Any = None,
                     transformer_options: dict[str, Any] | None = None, **kwargs: Any) -> torch.Tensor:
        transformer_options = {} if transformer_options is None else transformer_options
        sigma = t
        xc = self.model_sampling.calculate_input(sigma, x)
        if c_concat is not None:
            xc = torch.cat([xc, c_concat], dim=1)
        dtype = self.manual_cast_dtype or self.get_dtype()
        xc = xc.to(dtype)
        timestep = self.model_sampling.timestep(t).float()
        context = None if c_crossattn is None else c_crossattn.to(dtype)
        extra = {name: value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value
                 for name, value in kwargs.items()}
        timestep = self.process_timestep(timestep, x=x, **extra)
        network = self.diffusion_model
        wrappers = get_all_wrappers(WrappersMP.DIFFUSION_MODEL, transformer_options)
        output = WrapperExecutor.new_class_executor(network, network, wrappers).execute(
            xc, timestep, context=context, control=control, transformer_options=transformer_options, **extra)
        return self.model_sampling.calculate_denoised(sigma, output.float(), x)

    def process_timestep(self, timestep: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return timestep

    def get_dtype(self) -> torch.dtype:
        network = getattr(self, "diffusion_model", None)
        dtype = getattr(network, "dtype", None)
        if isinstance(dtype, torch.dtype):
            return dtype
        parameter = next(network.parameters(), None) if network is not None else None
        return parameter.dtype if parameter is not None else torch.float32

    # -- conditioning --------------------------------------------------------------------------------------------

    def encode_adm(self, **kwargs: Any) -> torch.Tensor | None:
        """The ADM vector ``y`` from a conditioning's options (None: this family takes none)."""
        return None

    def concat_cond(self, **kwargs: Any) -> torch.Tensor | None:
        """The extra input channels of an inpainting model (``concat_keys``); None for any other model."""
        if self.concat_keys:
            raise lacking("comfy.model_base.BaseModel.concat_cond",
                          f"the extra input channels {self.concat_keys} of an inpainting model built by a pack; "
                          f"Hearth's SD plugin builds its own inpainting models' channels")
        return None

    def extra_conds(self, **kwargs: Any) -> dict[str, Any]:
        """The model's inputs from a conditioning's options, as ``comfy.conds`` objects: ``c_concat``
        (``concat_cond`` or ``noise_concat``), ``y`` (``encode_adm``), ``c_crossattn`` (``cross_attn``),
        ``crossattn_controlnet``."""
        out: dict[str, Any] = {}
        concat = self.concat_cond(**kwargs)
        if concat is not None:
            out["c_concat"] = conds.CONDNoiseShape(concat)
        adm = self.encode_adm(**kwargs)
        if adm is not None:
            out["y"] = conds.CONDRegular(adm)
        if kwargs.get("cross_attn") is not None:
            out["c_crossattn"] = conds.CONDCrossAttn(kwargs["cross_attn"])
        if kwargs.get("cross_attn_controlnet") is not None:
            out["crossattn_controlnet"] = conds.CONDCrossAttn(kwargs["cross_attn_controlnet"])
        if kwargs.get("noise_concat") is not None:
            out["c_concat"] = conds.CONDNoiseShape(kwargs["noise_concat"])
        return out

    def extra_conds_shapes(self, **kwargs: Any) -> dict[str, Any]:
        return {}

    def set_inpaint(self) -> None:
        self.concat_keys = ("mask", "masked_image")

    # -- latents, weights, memory ------------------------------------------------------------------------------

    def process_latent_in(self, latent: torch.Tensor) -> torch.Tensor:
        return self.latent_format.process_in(latent)

    def process_latent_out(self, latent: torch.Tensor) -> torch.Tensor:
        return self.latent_format.process_out(latent)

    def scale_latent_inpaint(self, latent_image: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.process_latent_in(latent_image)

    def load_model_weights(self, sd: dict[str, torch.Tensor], unet_prefix: str = "") -> BaseModel:
        """Load the network's weights from ``sd`` (keys under ``unet_prefix``), through the config's
        ``process_unet_state_dict``; keys the network lacks are ignored, as ComfyUI does."""
        weights = {k[len(unet_prefix):]: v for k, v in sd.items() if k.startswith(unet_prefix)}
        weights = self.model_config.process_unet_state_dict(weights)
        self.diffusion_model.load_state_dict(weights, strict=False)
        return self

    def state_dict_for_saving(self, clip_state_dict: dict[str, Any] | None = None,
                              vae_state_dict: dict[str, Any] | None = None,
                              clip_vision_state_dict: dict[str, Any] | None = None) -> dict[str, Any]:
        """A checkpoint's state dict in ComfyUI's layout: the network under ``model.diffusion_model.`` and the
        parts given under their configured prefixes."""
        saved = self.model_config.process_unet_state_dict_for_saving(dict(self.diffusion_model.state_dict()))
        if clip_state_dict is not None:
            saved.update(self.model_config.process_clip_state_dict_for_saving(clip_state_dict))
        if vae_state_dict is not None:
            saved.update(self.model_config.process_vae_state_dict_for_saving(vae_state_dict))
        if clip_vision_state_dict is not None:
            saved.update(self.model_config.process_clip_vision_state_dict_for_saving(clip_vision_state_dict))
        return saved

    def memory_required(self, input_shape: tuple[int, ...], cond_shapes: dict[str, Any] | None = None) -> int:
        """Bytes one evaluation needs beyond the weights for a batch of ``input_shape`` (ComfyUI's estimate with
        memory-efficient attention: area x dtype size x ``memory_usage_factor`` / 100 MiB)."""
        area = input_shape[0] * math.prod(input_shape[2:])
        size = torch.finfo(self.manual_cast_dtype or self.get_dtype()).bits // 8
        return int(area * size * 0.01 * self.memory_usage_factor * 1024 * 1024)


def sdxl_pooled(args: dict[str, Any], noise_augmentor: Any) -> torch.Tensor:
    """The pooled text embedding SDXL's ADM starts with (unCLIP image conditioning is not provided)."""
    if "unclip_conditioning" in args:
        raise lacking("comfy.model_base.sdxl_pooled(unclip_conditioning)", "unCLIP conditioning for SDXL")
    return args["pooled_output"]


def _embedded(embedder: Timestep, values: list[float], pooled: torch.Tensor) -> torch.Tensor:
    flat = torch.flatten(torch.cat([embedder(torch.tensor([float(v)])) for v in values]))
    return torch.cat((pooled, flat.unsqueeze(0).repeat(pooled.shape[0], 1).to(pooled.device)), dim=1)


class SDXLRefiner(BaseModel):
    """SDXL's refiner: the ADM is the pooled text plus size, crop and aesthetic-score embeddings."""

    _hearth_families = frozenset({"sdxl_refiner"})

    def __init__(self, model_config: Any, model_type: ModelType = ModelType.EPS, device: Any = None,
                 unet_model: Any = None) -> None:
        super().__init__(model_config, model_type, device=device, unet_model=unet_model)
        self.embedder = Timestep(256)

    def encode_adm(self, **kwargs: Any) -> torch.Tensor:
        pooled = sdxl_pooled(kwargs, None)
        width, height = kwargs.get("width", 768), kwargs.get("height", 768)
        score = 2.5 if kwargs.get("prompt_type", "") == "negative" else kwargs.get("aesthetic_score", 6)
        return _embedded(self.embedder, [height, width, kwargs.get("crop_h", 0), kwargs.get("crop_w", 0), score],
                         pooled)


class SDXL(BaseModel):
    """SDXL: the ADM is the pooled text plus the original size, crop and target size embeddings."""

    _hearth_families = frozenset({"sdxl"})

    def __init__(self, model_config: Any, model_type: ModelType = ModelType.EPS, device: Any = None,
                 unet_model: Any = None) -> None:
        super().__init__(model_config, model_type, device=device, unet_model=unet_model)
        self.embedder = Timestep(256)

    def encode_adm(self, **kwargs: Any) -> torch.Tensor:
        pooled = sdxl_pooled(kwargs, None)
        width, height = kwargs.get("width", 768), kwargs.get("height", 768)
        values = [height, width, kwargs.get("crop_h", 0), kwargs.get("crop_w", 0),
                  kwargs.get("target_height", height), kwargs.get("target_width", width)]
        return _embedded(self.embedder, values, pooled)


class SD21UNCLIP(BaseModel):
    """SD2.1 unCLIP: an ADM of zeros without image conditioning (the noise augmentor is not provided)."""

    def __init__(self, model_config: Any, noise_aug_config: dict[str, Any],
                 model_type: ModelType = ModelType.V_PREDICTION, device: Any = None, unet_model: Any = None) -> None:
        super().__init__(model_config, model_type, device=device, unet_model=unet_model)
        self.noise_aug_config = noise_aug_config

    def encode_adm(self, **kwargs: Any) -> torch.Tensor:
        if kwargs.get("unclip_conditioning") is not None:
            raise lacking("comfy.model_base.SD21UNCLIP.encode_adm(unclip_conditioning)", "unCLIP image conditioning")
        return torch.zeros((1, self.adm_channels))


class SVD_img2vid(BaseModel):  # noqa: N801 - ComfyUI's name
    """Stable Video Diffusion (``isinstance`` only: Hearth has no SVD family)."""

    def __init__(self, model_config: Any, model_type: ModelType = ModelType.V_PREDICTION_EDM, device: Any = None,
                 unet_model: Any = None) -> None:
        super().__init__(model_config, model_type, device=device, unet_model=unet_model)


class SD3(BaseModel):
    """SD3 (flow matching)."""

    _hearth_families = frozenset({"sd3"})

    def __init__(self, model_config: Any, model_type: ModelType = ModelType.FLOW, device: Any = None,
                 unet_model: Any = None) -> None:
        super().__init__(model_config, model_type, device=device, unet_model=unet_model)


class Flux(BaseModel):
    """Flux (flow matching, Flux's shift)."""

    _hearth_families = frozenset({"flux"})

    def __init__(self, model_config: Any, model_type: ModelType = ModelType.FLUX, device: Any = None,
                 unet_model: Any = None) -> None:
        super().__init__(model_config, model_type, device=device, unet_model=unet_model)


class WAN21(BaseModel):
    """Wan 2.1 video models (flow matching)."""

    _hearth_families = frozenset({"wan", "wan21"})

    def __init__(self, model_config: Any, model_type: ModelType = ModelType.FLOW, device: Any = None,
                 unet_model: Any = None) -> None:
        super().__init__(model_config, model_type, device=device, unet_model=unet_model)


# The other families of ComfyUI, for packs' isinstance tests and subclasses: no Hearth model is one of them, and
# building one needs ComfyUI's network for it (BaseModel names what is missing).
_OTHER_FAMILIES = ("SD_X4Upscaler", "IP2P", "SD15_instructpix2pix", "SDXL_instructpix2pix", "Stable_Zero123",
                   "SV3D_u", "SV3D_p", "StableCascade_C", "StableCascade_B", "StableAudio1", "HunyuanDiT", "PixArt",
                   "AuraFlow", "GenmoMochi", "LTXV", "HunyuanVideo", "CosmosVideo", "Lumina2", "HiDream", "Chroma",
                   "QwenImage", "WAN21_Vace", "Hunyuan3Dv2")
for _name in _OTHER_FAMILIES:
    globals()[_name] = _ModelMeta(_name, (BaseModel,), {
        "__module__": __name__, "__doc__": f"ComfyUI's {_name} model class (no Hearth family is one)."})
del _name
