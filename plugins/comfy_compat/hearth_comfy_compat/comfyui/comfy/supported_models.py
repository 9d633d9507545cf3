"""``comfy.supported_models``: the configurations (``comfy.supported_models_base.BASE``) of the model families,
which packs subclass for their own families, read (``SDXL.unet_config``, ``latent_format``) or list (``models``).

Each builds its ``comfy.model_base`` model with ``get_model`` and names its text encoders with ``clip_target``
(from ``comfy.sd1_clip`` / ``comfy.sdxl_clip``). Hearth's own checkpoint loading does not go through these: its
model plugins detect and load their families themselves.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from hearth_comfy_compat.comfy_utils import state_dict_prefix_replace
from hearth_comfy_compat.hook import lacking

from . import latent_formats, model_base, supported_models_base
from .supported_models_base import ClipTarget


def _clip_target(module: str, tokenizer: str, model: str) -> ClipTarget:
    found = importlib.import_module(module)  # served by the compatibility layer, imported when asked
    return ClipTarget(getattr(found, tokenizer), getattr(found, model))


class SD15(supported_models_base.BASE):
    _hearth_family = "sd1"
    unet_config = {"context_dim": 768, "model_channels": 320, "use_linear_in_transformer": False,
                   "adm_in_channels": None, "use_temporal_attention": False}
    unet_extra_config = {"num_heads": 8, "num_head_channels": -1}
    latent_format = latent_formats.SD15
    memory_usage_factor = 1.0

    def process_clip_state_dict(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        # Old checkpoints keep the text model one level up; the position ids may be stored as floats.
        for key in [k for k in state_dict if k.startswith("cond_stage_model.transformer.")
                    and not k.startswith("cond_stage_model.transformer.text_model.")]:
            state_dict[key.replace("cond_stage_model.transformer.", "cond_stage_model.transformer.text_model.")] = (
                state_dict.pop(key))
        ids = "cond_stage_model.transformer.text_model.embeddings.position_ids"
        if ids in state_dict and state_dict[ids].dtype == torch.float32:
            state_dict[ids] = state_dict[ids].round()
        return state_dict_prefix_replace(state_dict, {"cond_stage_model.": "clip_l."}, filter_keys=True)

    def process_clip_state_dict_for_saving(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        return state_dict_prefix_replace(state_dict, {"clip_l.": "cond_stage_model."})

    def clip_target(self, state_dict: dict[str, Any] | None = None) -> ClipTarget:
        return _clip_target("comfy.sd1_clip", "SD1Tokenizer", "SD1ClipModel")


def _openclip_not_converted(config: supported_models_base.BASE) -> Any:
    return lacking(f"comfy.supported_models.{type(config).__name__}.process_clip_state_dict",
                   "converting OpenCLIP text-encoder keys to ComfyUI's is not offered; Hearth's checkpoint loaders "
                   "read these encoders themselves")


class SD20(supported_models_base.BASE):
    _hearth_family = "sd2"
    unet_config = {"context_dim": 1024, "model_channels": 320, "use_linear_in_transformer": True,
                   "adm_in_channels": None, "use_temporal_attention": False}
    unet_extra_config = {"num_heads": -1, "num_head_channels": 64, "attn_precision": torch.float32}
    latent_format = latent_formats.SD15
    memory_usage_factor = 1.0

    def process_clip_state_dict(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        raise _openclip_not_converted(self)

    def model_type(self, state_dict: dict[str, Any], prefix: str = "") -> model_base.ModelType:
        """V-prediction for the 768-v checkpoints: their last output block's norm has a large spread."""
        if self.unet_config.get("in_channels", 4) == 4:
            bias = state_dict.get(f"{prefix}output_blocks.11.1.transformer_blocks.0.norm1.bias")
            if bias is not None and float(bias.float().std()) > 10:
                return model_base.ModelType.V_PREDICTION
        return model_base.ModelType.EPS


class SD21UnclipL(SD20):
    unet_config = {"context_dim": 1024, "model_channels": 320, "use_linear_in_transformer": True,
                   "adm_in_channels": 1536, "use_temporal_attention": False}
    clip_vision_prefix = "embedder.model.visual."
    noise_aug_config = {"noise_schedule_config": {"timesteps": 1000, "beta_schedule": "squaredcos_cap_v2"},
                        "timestep_dim": 768}


class SD21UnclipH(SD20):
    unet_config = {"context_dim": 1024, "model_channels": 320, "use_linear_in_transformer": True,
                   "adm_in_channels": 2048, "use_temporal_attention": False}
    clip_vision_prefix = "embedder.model.visual."
    noise_aug_config = {"noise_schedule_config": {"timesteps": 1000, "beta_schedule": "squaredcos_cap_v2"},
                        "timestep_dim": 1024}


class SDXLRefiner(supported_models_base.BASE):
    _hearth_family = "sdxl_refiner"
    unet_config = {"model_channels": 384, "use_linear_in_transformer": True, "context_dim": 1280,
                   "adm_in_channels": 2560, "transformer_depth": [0, 0, 4, 4, 4, 4, 0, 0],
                   "use_temporal_attention": False}
    latent_format = latent_formats.SDXL
    memory_usage_factor = 1.0

    def get_model(self, state_dict: dict[str, Any], prefix: str = "", device: Any = None) -> model_base.BaseModel:
        return model_base.SDXLRefiner(self, device=device)

    def process_clip_state_dict(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        raise _openclip_not_converted(self)

    def clip_target(self, state_dict: dict[str, Any] | None = None) -> ClipTarget:
        return _clip_target("comfy.sdxl_clip", "SDXLTokenizer", "SDXLRefinerClipModel")


class SDXL(supported_models_base.BASE):
    _hearth_family = "sdxl"
    unet_config = {"model_channels": 320, "use_linear_in_transformer": True,
                   "transformer_depth": [0, 0, 2, 2, 10, 10], "context_dim": 2048, "adm_in_channels": 2816,
                   "use_temporal_attention": False}
    latent_format = latent_formats.SDXL
    memory_usage_factor = 0.8

    def model_type(self, state_dict: dict[str, Any], prefix: str = "") -> model_base.ModelType:
        """V-prediction when the checkpoint says so with a ``v_pred`` key (ComfyUI's marker)."""
        if "v_pred" in state_dict:
            return model_base.ModelType.V_PREDICTION
        return model_base.ModelType.EPS

    def get_model(self, state_dict: dict[str, Any], prefix: str = "", device: Any = None) -> model_base.BaseModel:
        out = model_base.SDXL(self, model_type=self.model_type(state_dict, prefix), device=device)
        if self.inpaint_model():
            out.set_inpaint()
        return out

    def process_clip_state_dict(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        raise _openclip_not_converted(self)

    def clip_target(self, state_dict: dict[str, Any] | None = None) -> ClipTarget:
        return _clip_target("comfy.sdxl_clip", "SDXLTokenizer", "SDXLClipModel")


class SSD1B(SDXL):
    unet_config = {"model_channels": 320, "use_linear_in_transformer": True,
                   "transformer_depth": [0, 0, 2, 2, 4, 4], "context_dim": 2048, "adm_in_channels": 2816,
                   "use_temporal_attention": False}


class SVD_img2vid(supported_models_base.BASE):  # noqa: N801 - ComfyUI's name
    unet_config = {"model_channels": 320, "in_channels": 8, "use_linear_in_transformer": True,
                   "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "context_dim": 1024, "adm_in_channels": 768,
                   "use_temporal_attention": True, "use_temporal_resblock": True}
    unet_extra_config = {"num_heads": -1, "num_head_channels": 64, "attn_precision": torch.float32}
    clip_vision_prefix = "conditioner.embedders.0.open_clip.model.visual."
    latent_format = latent_formats.SD15
    sampling_settings = {"sigma_max": 700.0, "sigma_min": 0.002}

    def get_model(self, state_dict: dict[str, Any], prefix: str = "", device: Any = None) -> model_base.BaseModel:
        return model_base.SVD_img2vid(self, device=device)


class SD3(supported_models_base.BASE):
    unet_config = {"in_channels": 16, "pos_embed_scaling_factor": None}
    sampling_settings = {"shift": 3.0}
    unet_extra_config: dict[str, Any] = {}
    latent_format = latent_formats.SD3
    memory_usage_factor = 1.2
    text_encoder_key_prefix = ["text_encoders."]

    def get_model(self, state_dict: dict[str, Any], prefix: str = "", device: Any = None) -> model_base.BaseModel:
        return model_base.SD3(self, device=device)


class Flux(supported_models_base.BASE):
    unet_config = {"image_model": "flux", "guidance_embed": True}
    sampling_settings: dict[str, Any] = {}
    unet_extra_config: dict[str, Any] = {}
    latent_format = latent_formats.Flux
    memory_usage_factor = 2.8
    supported_inference_dtypes = [torch.bfloat16, torch.float16, torch.float32]
    vae_key_prefix = ["vae."]
    text_encoder_key_prefix = ["text_encoders."]

    def get_model(self, state_dict: dict[str, Any], prefix: str = "", device: Any = None) -> model_base.BaseModel:
        return model_base.Flux(self, device=device)


class WAN21_T2V(supported_models_base.BASE):  # noqa: N801 - ComfyUI's name
    unet_config = {"image_model": "wan2.1", "model_type": "t2v"}
    sampling_settings = {"shift": 8.0}
    unet_extra_config: dict[str, Any] = {}
    latent_format = latent_formats.Wan21
    memory_usage_factor = 1.0
    supported_inference_dtypes = [torch.float16, torch.bfloat16, torch.float32]
    vae_key_prefix = ["vae."]
    text_encoder_key_prefix = ["text_encoders."]

    def get_model(self, state_dict: dict[str, Any], prefix: str = "", device: Any = None) -> model_base.BaseModel:
        return model_base.WAN21(self, device=device)


class _WithoutHearthModel(supported_models_base.BASE):
    """A family ComfyUI supports and Hearth has no model plugin for: its configuration exists for packs' isinstance
    tests and subclasses; ``get_model`` names what is missing."""

    unet_extra_config: dict[str, Any] = {}

    def get_model(self, state_dict: dict[str, Any], prefix: str = "", device: Any = None) -> model_base.BaseModel:
        raise lacking(f"comfy.supported_models.{type(self).__name__}.get_model",
                      f"Hearth has no model plugin for the {type(self).__name__} family")


_OTHER_FAMILIES = ("SD15_instructpix2pix", "SDXL_instructpix2pix", "Segmind_Vega", "KOALA_700M", "KOALA_1B",
                   "SD_X4Upscaler", "Stable_Zero123", "Stable_Cascade_C", "Stable_Cascade_B", "SV3D_u", "SV3D_p",
                   "StableAudio", "AuraFlow", "PixArtAlpha", "PixArtSigma", "HunyuanDiT", "HunyuanDiT1",
                   "FluxInpaint", "FluxSchnell", "GenmoMochi", "LTXV", "HunyuanVideo", "CosmosT2V", "CosmosI2V",
                   "Lumina2", "WAN21_I2V", "WAN21_Vace", "HiDream", "Chroma", "QwenImage")
_other_models = []
for _name in _OTHER_FAMILIES:
    # A marker no detected UNet has, so matches() never picks a family Hearth cannot build.
    _other_models.append(type(_WithoutHearthModel)(_name, (_WithoutHearthModel,), {
        "__module__": __name__, "unet_config": {"hearth_unsupported_family": _name},
        "__doc__": f"ComfyUI's {_name} configuration (no Hearth model plugin builds it)."}))
    globals()[_name] = _other_models[-1]
del _name

# In detection order, as ComfyUI lists them: the first whose unet_config matches wins.
models = [SD15, SD20, SD21UnclipL, SD21UnclipH, SDXLRefiner, SDXL, SSD1B, SVD_img2vid, SD3, Flux, WAN21_T2V,
          *_other_models]
