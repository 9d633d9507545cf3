"""ComfyUI's ``comfy.lora_convert``: LoRA files whose trainers spell keys their own way, renamed to the spellings
:func:`comfy.lora.load_lora` reads. Pure functions of a state dict; :func:`convert_lora` picks the one a file needs
from its sentinel keys (and returns any other file unchanged)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["convert_lora", "convert_lora_bfl_control", "convert_lora_wan_fun", "convert_uso_lora",
           "twinflow_z_image_lora_to_diffusers"]


def convert_lora_bfl_control(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Black Forest Labs' Flux control LoRAs: under ``diffusion_model.``, bias deltas as ``.diff_b``, norm scales
    as ``.set_weight``, and the widened ``img_in`` recorded as its ``reshape_weight``."""
    out = {f"diffusion_model.{k.replace('.lora_B.bias', '.diff_b').replace('_norm.scale', '_norm.set_weight')}": v
           for k, v in sd.items()}
    out["diffusion_model.img_in.reshape_weight"] = torch.tensor(
        [sd["img_in.lora_B.weight"].shape[0], sd["img_in.lora_A.weight"].shape[1]])
    return out


def convert_lora_wan_fun(sd: Mapping[str, Any]) -> dict[str, Any]:
    """VideoX-Fun's Wan LoRAs write ``lora_unet__`` (two underscores) where kohya writes one."""
    return {("lora_unet_" + k[len("lora_unet__"):]) if k.startswith("lora_unet__") else k: v for k, v in sd.items()}


_USO_RENAMES = ((".down.weight", ".lora_down.weight"), (".up.weight", ".lora_up.weight"),
                (".qkv_lora2.", ".txt_attn.qkv."), (".qkv_lora1.", ".img_attn.qkv."),
                (".proj_lora1.", ".img_attn.proj."), (".proj_lora2.", ".txt_attn.proj."),
                (".qkv_lora.", ".linear1_qkv."), (".proj_lora.", ".linear2."), (".processor.", "."))


def convert_uso_lora(sd: Mapping[str, Any]) -> dict[str, Any]:
    """ByteDance USO's Flux LoRAs: attention-processor module names to the Flux model's own."""
    out = {}
    for key, value in sd.items():
        for old, new in _USO_RENAMES:
            key = key.replace(old, new)
        out[f"diffusion_model.{key}"] = value
    return out


def twinflow_z_image_lora_to_diffusers(state_dict: dict[str, Any]) -> dict[str, Any]:
    """TwinFlow's Z-Image LoRAs: its ``t_embedder.`` is the model's second timestep embedder (renamed in place)."""
    for key in [k for k in state_dict if k.startswith("t_embedder.") and "t_embedder_2" not in k]:
        state_dict["t_embedder_2." + key[len("t_embedder."):]] = state_dict.pop(key)
    return state_dict


def convert_lora(sd: dict[str, Any]) -> dict[str, Any]:
    """``sd`` in the spellings :func:`comfy.lora.load_lora` reads (unchanged when it already is)."""
    if "img_in.lora_A.weight" in sd and "single_blocks.0.norm.key_norm.scale" in sd:
        return convert_lora_bfl_control(sd)
    if "lora_unet__blocks_0_cross_attn_k.lora_down.weight" in sd:
        return convert_lora_wan_fun(sd)
    if "single_blocks.37.processor.qkv_lora.up.weight" in sd and "double_blocks.18.processor.qkv_lora2.up.weight" in sd:
        return convert_uso_lora(sd)
    if any(k.startswith("t_embedder.") for k in sd):
        return twinflow_z_image_lora_to_diffusers(sd)
    return sd
