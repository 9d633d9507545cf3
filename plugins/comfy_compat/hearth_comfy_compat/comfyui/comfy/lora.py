"""ComfyUI's ``comfy.lora``: which model weight each LoRA module name means, LoRA files as weight patches, and the
patch arithmetic.

The three steps a pack takes to put a LoRA on a model itself (as ComfyUI's ``load_lora_for_models`` does)::

    key_map = comfy.lora.model_lora_keys_unet(model.model, {})       # LoRA module name -> model weight key
    key_map = comfy.lora.model_lora_keys_clip(clip.patcher..., key_map)
    patches = comfy.lora.load_lora(lora_state_dict, key_map)          # weight key -> ("lora", (up, down, ...))
    model = model.clone(); model.add_patches(patches, strength)

Key maps are computed from the weights the value really has, in ComfyUI's key naming (``diffusion_model.…`` for a
UNet, ``clip_l.transformer.text_model.…`` for CLIP-L): a Hearth MODEL's ``model.model`` (its ``diffusion_model``),
a MODEL or CLIP value itself, or any torch module with ComfyUI's key layout. UNet names get their kohya
(``lora_unet_…``, LDM or diffusers paths), diffusers/PEFT (``unet.…``) and generic (``diffusion_model.…``) spellings.

:func:`load_lora` returns ComfyUI's patch dict; Hearth's ``add_patches`` takes every entry of it.
:func:`calculate_weight` applies ComfyUI's stored patch lists (diff, set, lora with LoCon mid / DoRA / reshape,
LoHa, LoKr, GLoRA), for packs that patch weights themselves (GGUF's ops); the arithmetic is Hearth's own,
:mod:`hearth.core.models.lora_math`, the same code ``add_patches`` uses.
What differs: OpenCLIP encoders (SD2's ``clip_h``, SDXL's ``clip_g``) keep their own layout in Hearth, with q, k, v
fused, so ``model_lora_keys_clip`` maps CLIP-L-layout encoders only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from hearth.core.models import lora_math
from hearth.core.models.lora_math import pad_tensor_to_shape, weight_decompose

log = logging.getLogger(__name__)

LORA_CLIP_MAP = {
    "mlp.fc1": "mlp_fc1",
    "mlp.fc2": "mlp_fc2",
    "self_attn.k_proj": "self_attn_k_proj",
    "self_attn.q_proj": "self_attn_q_proj",
    "self_attn.v_proj": "self_attn_v_proj",
    "self_attn.out_proj": "self_attn_out_proj",
}

__all__ = ["LORA_CLIP_MAP", "calculate_weight", "load_lora", "model_lora_keys_clip", "model_lora_keys_unet",
           "pad_tensor_to_shape", "weight_decompose"]

_UNET_PREFIX = "diffusion_model."


# -- the weights a model has, in ComfyUI's names -----------------------------------------------------------------

def state_dict_keys(model: Any) -> list[str]:
    """The weight keys of ``model`` in ComfyUI's naming.

    Accepted: a Hearth MODEL / CLIP / VAE value (``model_state_dict``), ComfyUI's BaseModel or Hearth's view of it
    (``diffusion_model`` under ``diffusion_model.``), a ModelPatcher-like object holding ``model``, or any torch
    module (its own ``state_dict`` keys).
    """
    if callable(getattr(model, "model_state_dict", None)):
        return list(model.model_state_dict())
    if isinstance(model, torch.nn.Module):
        return list(model.state_dict(keep_vars=True))
    diffusion = getattr(model, "diffusion_model", None)
    if isinstance(diffusion, torch.nn.Module):
        return [_UNET_PREFIX + key for key in diffusion.state_dict(keep_vars=True)]
    if callable(getattr(model, "state_dict", None)):
        return list(model.state_dict())
    inner = getattr(model, "model", None)
    if inner is not None and inner is not model:
        return state_dict_keys(inner)
    raise TypeError(f"comfy.lora: cannot read the weight keys of {type(model).__name__}; pass a MODEL's .model, a "
                    f"MODEL or CLIP value, or a torch module")


# -- UNet: LDM paths and their diffusers names -----------------------------------------------------------------

_RESNET_PARTS = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
                 "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
_FIXED_PARTS = {"time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
                "label_emb.0.0": "add_embedding.linear_1", "label_emb.0.2": "add_embedding.linear_2",
                "input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out"}
_UNET_BLOCK = re.compile(r"(input_blocks|output_blocks)\.(\d+)\.(\d+)\.(.+)|middle_block\.(\d+)\.(.+)")


def _resnet_part(rest: str) -> str:
    for ldm, diffusers in _RESNET_PARTS.items():
        if rest == ldm or rest.startswith(ldm + "."):
            return diffusers + rest[len(ldm):]
    return rest


def _res_blocks_per_level(paths: Iterable[str]) -> int:
    # The first downsampler of input_blocks sits right after the first level's ResBlocks.
    downs, blocks = set(), set()
    for path in paths:
        found = re.match(r"input_blocks\.(\d+)\.0\.(op\.)?", path)
        if found:
            (downs if found.group(2) else blocks).add(int(found.group(1)))
    return min(downs) - 1 if downs else max(blocks - {0}, default=0)


def _diffusers_path(path: str, per_level: int) -> str | None:
    """The diffusers ``UNet2DConditionModel`` name of an LDM UNet weight path (None where diffusers has none)."""
    for ldm, diffusers in _FIXED_PARTS.items():
        if path == ldm or path.startswith(ldm + "."):
            return diffusers + path[len(ldm):]
    found = _UNET_BLOCK.fullmatch(path)
    if found is None:
        return None
    if found.group(5) is not None:  # middle_block: ResBlock, transformer, ResBlock
        index, rest = int(found.group(5)), found.group(6)
        return f"mid_block.attentions.0.{rest}" if index == 1 else f"mid_block.resnets.{index // 2}.{_resnet_part(rest)}"
    side, number, layer, rest = found.group(1), int(found.group(2)), int(found.group(3)), found.group(4)
    if side == "input_blocks":
        level, j = divmod(number - 1, per_level + 1)
        if j == per_level:  # the level's downsampler
            return f"down_blocks.{level}.downsamplers.0.conv{rest[2:]}" if rest.startswith("op") else None
        block = f"down_blocks.{level}"
    else:
        level, j = divmod(number, per_level + 1)
        block = f"up_blocks.{level}"
        if layer > 0 and rest.startswith("conv"):
            return f"{block}.upsamplers.0.{rest}"
    return f"{block}.resnets.{j}.{_resnet_part(rest)}" if layer == 0 else f"{block}.attentions.{j}.{rest}"


def unet_to_diffusers(keys: Iterable[str]) -> dict[str, str]:
    """Diffusers weight name -> LDM weight key (``diffusion_model.`` removed) for a UNet's weight keys, as
    ComfyUI's ``comfy.utils.unet_to_diffusers`` gives from a config (derived here from the weights themselves)."""
    paths = [k[len(_UNET_PREFIX):] if k.startswith(_UNET_PREFIX) else k for k in keys]
    per_level = _res_blocks_per_level(paths)
    found = {}
    for path in paths:
        name = _diffusers_path(path, per_level)
        if name is not None:
            found[name] = path
    return found


def model_lora_keys_unet(model: Any, key_map: dict[str, str] | None = None) -> dict[str, str]:
    """Add every LoRA spelling of ``model``'s diffusion-model weights to ``key_map`` (returned), mapped to the
    weight's ComfyUI key (``diffusion_model.input_blocks.1.1.proj_in.weight``)."""
    key_map = {} if key_map is None else key_map
    keys = [k for k in state_dict_keys(model) if k.startswith(_UNET_PREFIX)]
    for key in keys:
        if key.endswith(".weight"):
            path = key[len(_UNET_PREFIX):-len(".weight")]
            key_map[f"lora_unet_{path.replace('.', '_')}"] = key
            key_map[f"lora_prior_unet_{path.replace('.', '_')}"] = key
            key_map[key[:-len(".weight")]] = key
        else:
            key_map[key] = key
    for diffusers, path in unet_to_diffusers(keys).items():
        if not diffusers.endswith(".weight"):
            continue
        target = _UNET_PREFIX + path
        module = diffusers[:-len(".weight")]
        key_map[f"lora_unet_{module.replace('.', '_')}"] = target
        key_map[f"lycoris_{module.replace('.', '_')}"] = target
        # The attention-processor spelling of old diffusers LoRAs, and the plain one of PEFT.
        processor = module.replace(".to_", ".processor.to_")
        if processor.endswith(".to_out.0"):
            processor = processor[:-2]
        for prefix in ("", "unet."):
            key_map[prefix + processor] = target
            key_map.setdefault(prefix + module, target)
    return key_map


def model_lora_keys_clip(model: Any, key_map: dict[str, str] | None = None) -> dict[str, str]:
    """Add the LoRA spellings of a text encoder's weights (kohya ``lora_te*_…``, diffusers ``text_encoder*.…``,
    generic ``text_encoders.…``) to ``key_map`` (returned). ``model``: a CLIP value or ComfyUI's cond_stage_model."""
    key_map = {} if key_map is None else key_map
    keys = set(state_dict_keys(model))
    for key in keys:
        if key.endswith(".weight"):
            key_map[f"text_encoders.{key[:-len('.weight')]}"] = key
    layer = "text_model.encoder.layers.{}.{}.weight"
    clip_l = any(k.startswith("clip_l.transformer.text_model.") for k in keys)
    blocks = sorted({int(m.group(1)) for k in keys if (m := re.search(r"encoder\.layers\.(\d+)\.", k))})
    for b in blocks:
        for part, kohya in LORA_CLIP_MAP.items():
            for encoder, names in (
                ("clip_h", ("lora_te_", "lora_te1_", "text_encoder.")),
                ("clip_l", ("lora_te_", "lora_te1_", "text_encoder.")),
                ("clip_g", ("lora_te2_", "text_encoder_2.") if clip_l else ("lora_te_", "text_encoder.",
                                                                                 "lora_prior_te_")),
            ):
                key = f"{encoder}.transformer." + layer.format(b, part)
                if key not in keys:
                    continue
                for name in names:
                    if name.endswith("."):
                        key_map[f"{name}text_model.encoder.layers.{b}.{part}"] = key
                    else:
                        key_map[f"{name}text_model_encoder_layers_{b}_{kohya}"] = key
    for encoder, name in (("clip_g", "lora_te2_text_projection"), ("clip_l", "lora_te1_text_projection")):
        if f"{encoder}.transformer.text_projection.weight" in keys:
            key_map[name] = f"{encoder}.transformer.text_projection.weight"
    if "clip_g.transformer.text_projection.weight" in keys:
        key_map["lora_prior_te_text_projection"] = "clip_g.transformer.text_projection.weight"
    return key_map


# -- LoRA files as patches -------------------------------------------------------------------------------------

# (up, down, mid or None) name patterns of the trainers' low-rank pairs, tried in this order.
_PAIRS = (("{}.lora_up.weight", "{}.lora_down.weight", "{}.lora_mid.weight"),
          ("{}_lora.up.weight", "{}_lora.down.weight", None),
          ("{}.lora_B.weight", "{}.lora_A.weight", None),
          ("{}.lora.up.weight", "{}.lora.down.weight", None),
          ("{}.lora_linear_layer.up.weight", "{}.lora_linear_layer.down.weight", None))


def load_lora(lora: Mapping[str, Any], to_load: Mapping[str, str], log_missing: bool = True) -> dict[str, Any]:
    """ComfyUI's patch dict for a LoRA state dict: model weight key -> ``(kind, tensors)``.

    :param to_load: LoRA module name -> model weight key (from :func:`model_lora_keys_unet` / ``_clip``).
    Kinds: ``("lora", (up, down, alpha, mid, dora_scale, reshape))``, ``("loha", ...)``, ``("lokr", ...)``,
    ``("glora", ...)``, ``("diff", (delta,))`` and ``("set", (weight,))``, as ComfyUI writes them. File keys no
    module used are logged.
    """
    patches: dict[str, Any] = {}
    used: set[str] = set()

    def take(name: str | None) -> Any:
        if name is None or name not in lora:
            return None
        used.add(name)
        return lora[name]

    for module, target in to_load.items():
        alpha = take(f"{module}.alpha")
        alpha = None if alpha is None else float(alpha.item() if hasattr(alpha, "item") else alpha)
        dora_scale = take(f"{module}.dora_scale")
        reshape = lora.get(f"{module}.reshape_weight")
        if reshape is not None:
            used.add(f"{module}.reshape_weight")
            reshape = reshape.tolist()
        for up, down, mid in _PAIRS:
            if up.format(module) in lora:
                patches[target] = ("lora", (take(up.format(module)), take(down.format(module)), alpha,
                                            take(mid.format(module) if mid else None), dora_scale, reshape))
                break
        if f"{module}.hada_w1_a" in lora:
            w1a, w1b, w2a, w2b, t1, t2 = (take(f"{module}.hada_{n}") for n in ("w1_a", "w1_b", "w2_a", "w2_b",
                                                                                  "t1", "t2"))
            patches[target] = ("loha", (w1a, w1b, alpha, w2a, w2b, t1, t2, dora_scale))
        lokr = [take(f"{module}.lokr_{n}") for n in ("w1", "w2", "w1_a", "w1_b", "w2_a", "w2_b", "t2")]
        if any(t is not None for t in (lokr[0], lokr[1], lokr[2], lokr[4])):
            w1, w2, w1a, w1b, w2a, w2b, t2 = lokr
            patches[target] = ("lokr", (w1, w2, alpha, w1a, w1b, w2a, w2b, t2, dora_scale))
        if f"{module}.a1.weight" in lora:
            a1, a2, b1, b2 = (take(f"{module}.{n}.weight") for n in ("a1", "a2", "b1", "b2"))
            patches[target] = ("glora", (a1, a2, b1, b2, alpha, dora_scale))
        bias = f"{target[:-len('.weight')]}.bias" if target.endswith(".weight") else None
        for name, kind, key in ((f"{module}.w_norm", "diff", target), (f"{module}.b_norm", "diff", bias),
                                (f"{module}.diff", "diff", target), (f"{module}.diff_b", "diff", bias),
                                (f"{module}.set_weight", "set", target)):
            value = take(name) if key is not None else None
            if value is not None:
                patches[key] = (kind, (value,))
    if log_missing:
        for name in lora:
            if name not in used:
                log.warning("lora key not loaded: %s", name)
    return patches


# -- the arithmetic --------------------------------------------------------------------------------------------

def calculate_weight(patches: list[tuple[Any, ...]], weight: torch.Tensor, key: str,
                     intermediate_dtype: torch.dtype = torch.float32, original_weights: Any = None) -> torch.Tensor:
    """``weight`` with ComfyUI's patch list for ``key`` applied, in order; returns the result (changed in place
    where it can be).

    Each patch is ``(strength, value, strength_model, offset, function)`` as a ModelPatcher stores it: ``value``
    is ``(delta,)``, ``(kind, tensors)`` or a list (a nested weight and its own patches); ``offset`` narrows the
    weight to ``(dim, start, length)``; ``function`` maps the delta. A delta that does not fit is logged and
    skipped, as ComfyUI does.
    """
    for patch in patches:
        strength, value, strength_model = patch[0], patch[1], patch[2] if len(patch) > 2 else 1.0
        offset = patch[3] if len(patch) > 3 else None
        function = (patch[4] if len(patch) > 4 else None) or (lambda t: t)
        whole = None
        if offset is not None:
            whole, weight = weight, weight.narrow(offset[0], offset[1], offset[2])
        if strength_model != 1.0:
            weight *= strength_model
        if isinstance(value, list):  # a nested weight with its own patches (a merged model's)
            base = value[0][1](value[0][0].to(weight.device, intermediate_dtype, copy=True), inplace=True)
            value = (calculate_weight(value[1:], base, key, intermediate_dtype),)
        kind, args = ("diff", value) if len(value) == 1 else (value[0], value[1])
        if kind not in lora_math.KINDS:
            log.warning("patch type not recognized %s %s", kind, key)
        else:
            try:
                weight = lora_math.apply_patch(kind, args, weight, strength, intermediate_dtype, function)
            except ValueError as exc:  # ComfyUI logs a patch that does not fit and goes on
                log.error("ERROR %s %s %s", kind, key, exc)
        if whole is not None:
            weight = whole
    return weight
