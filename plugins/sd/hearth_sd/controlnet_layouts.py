"""ControlNet file layouts as data, and the pure conversions to the LDM layout :mod:`hearth_sd.controlnet_model` reads.

Three layouts are published for SD1.x / SD2.x / SDXL ControlNets:

* the original single file (``control_sd15_*.pth`` and its safetensors): ``control_model.`` + LDM names;
* the same LDM names bare (``control_v11p_sd15_*.safetensors``, the ``*_fp16`` repacks);
* diffusers' ``ControlNetModel`` (``diffusion_pytorch_model.safetensors``): ``controlnet_cond_embedding``,
  ``down_blocks``, ``controlnet_down_blocks``, ``controlnet_mid_block``.

ComfyUI reads all three (``comfy/controlnet.py``); so does :func:`to_ldm`, and diffusers' layout of a union
ControlNet (xinsir's controlnet-union-sdxl: ``task_embedding``, ``control_add_embedding``...,
:mod:`hearth_sd.controlnet_union`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

LDM_PREFIX = "control_model."
# One key each layout always has: what ModelFormat sentinels and to_ldm look for.
LDM_SENTINEL = "zero_convs.0.0.weight"
HINT_SENTINEL = "input_hint_block.0.weight"
DIFFUSERS_SENTINEL = "controlnet_cond_embedding.conv_in.weight"
UNION_SENTINELS = ("task_embedding", "control_add_embedding.linear_1.weight")
DIFFERENCE_KEY = "difference"  # a "diff" ControlNet stores weights minus its base UNet's (DiffControlNetLoader)

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
           "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


class ControlNetLayoutError(ValueError):
    """A file that is not a ControlNet Hearth reads; the message says which and why."""


def layout_of(keys: Any) -> str:
    """``"ldm"`` (``control_model.`` prefix), ``"ldm_bare"``, ``"diffusers"``, ``"union"`` or ``""`` (none)."""
    keys = set(keys)
    if DIFFUSERS_SENTINEL in keys:
        return "union" if any(k in keys for k in UNION_SENTINELS) else "diffusers"
    if LDM_PREFIX + LDM_SENTINEL in keys:
        return "ldm"
    if LDM_SENTINEL in keys:
        return "ldm_bare"
    return ""


def _levels(keys: Any) -> tuple[int, int]:
    """(number of down blocks, resnets per down block) of a diffusers ControlNet."""
    levels = {int(m.group(1)) for k in keys if (m := re.match(r"down_blocks\.(\d+)\.", k))}
    resnets = {int(m.group(1)) for k in keys if (m := re.match(r"down_blocks\.0\.resnets\.(\d+)\.", k))}
    if not levels or not resnets:
        raise ControlNetLayoutError("a diffusers ControlNet without down_blocks.N.resnets.M: not a ControlNet")
    return max(levels) + 1, max(resnets) + 1


def diffusers_block_map(levels: int, num_res_blocks: int) -> dict[str, str]:
    """diffusers module prefix -> LDM module prefix for the encoder half of a UNet of this shape.

    Values starting ``R:`` are resnets, whose layer names change too (:data:`_RESNET`).
    """
    m: dict[str, str] = {"conv_in.": "input_blocks.0.0.", "time_embedding.linear_1.": "time_embed.0.",
                         "time_embedding.linear_2.": "time_embed.2.", "add_embedding.linear_1.": "label_emb.0.0.",
                         "add_embedding.linear_2.": "label_emb.0.2.", "mid_block.resnets.0.": "R:middle_block.0.",
                         "mid_block.attentions.0.": "middle_block.1.", "mid_block.resnets.1.": "R:middle_block.2.",
                         "controlnet_mid_block.": "middle_block_out.0."}
    k = 1
    for level in range(levels):
        for j in range(num_res_blocks):
            m[f"down_blocks.{level}.resnets.{j}."] = f"R:input_blocks.{k}.0."
            m[f"down_blocks.{level}.attentions.{j}."] = f"input_blocks.{k}.1."
            k += 1
        if level != levels - 1:
            m[f"down_blocks.{level}.downsamplers.0.conv."] = f"input_blocks.{k}.0.op."
            k += 1
    for n in range(k):
        m[f"controlnet_down_blocks.{n}."] = f"zero_convs.{n}.0."
    return m


# A union ControlNet's own parts keep their names (its attention's packed projection renamed as ComfyUI does).
UNION_PARTS = ("task_embedding", "transformer_layes.", "spatial_ch_projs.", "control_add_embedding.")


def convert_diffusers_controlnet(sd: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers ``ControlNetModel`` state dict in the LDM layout (ComfyUI's key mapping, the same weights)."""
    blocks = sorted(diffusers_block_map(*_levels(sd)).items(), key=lambda kv: -len(kv[0]))
    hint = sorted(int(m.group(1)) for k in sd if (m := re.match(r"controlnet_cond_embedding\.blocks\.(\d+)\.", k)))
    hint_count = (max(hint) + 1) if hint else 0
    out: dict[str, Any] = {}
    for key, value in sd.items():
        if key.startswith(UNION_PARTS):
            out[key.replace(".attn.in_proj_", ".attn.in_proj.")] = value
            continue
        if key.startswith("controlnet_cond_embedding."):
            rest = key[len("controlnet_cond_embedding."):]
            if rest.startswith("conv_in."):
                out["input_hint_block.0." + rest[len("conv_in."):]] = value
            elif rest.startswith("conv_out."):
                out[f"input_hint_block.{2 * (hint_count + 1)}." + rest[len("conv_out."):]] = value
            else:
                number, _, tail = rest[len("blocks."):].partition(".")
                out[f"input_hint_block.{2 * (int(number) + 1)}.{tail}"] = value
            continue
        for old, new in blocks:
            if key.startswith(old):
                rest = key[len(old):]
                if new.startswith("R:"):
                    new = new[2:]
                    layer, _, tail = rest.partition(".")
                    if layer not in _RESNET:
                        raise ControlNetLayoutError(f"diffusers ControlNet key {key}: unknown resnet layer {layer}")
                    rest = f"{_RESNET[layer]}.{tail}"
                out[new + rest] = value
                break
        else:
            raise ControlNetLayoutError(f"diffusers ControlNet key {key} has no place in a ControlNet")
    return out


def to_ldm(sd: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The LDM-layout state dict (no prefix) of a ControlNet file in any of the three layouts.

    :raises ControlNetLayoutError: naming ``source`` for a file that is no ControlNet.
    """
    layout = layout_of(sd)
    if layout in ("diffusers", "union"):
        try:
            return convert_diffusers_controlnet(sd)
        except ControlNetLayoutError as exc:
            raise ControlNetLayoutError(f"{source}: {exc}") from None
    if layout == "ldm":
        return {k[len(LDM_PREFIX):]: v for k, v in sd.items() if k.startswith(LDM_PREFIX)}
    if layout == "ldm_bare":
        return {k: v for k, v in sd.items() if k != DIFFERENCE_KEY}
    raise ControlNetLayoutError(f"{source} is not a ControlNet: it has neither {LDM_SENTINEL} (bare or under "
                                f"{LDM_PREFIX}) nor diffusers' {DIFFUSERS_SENTINEL}")
