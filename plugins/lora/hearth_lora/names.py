"""Which model weight a LoRA module name means: every trainer's spelling mapped to the model's own (LDM) keys.

LoRA files name modules the way their trainer saw the model: kohya writes ``lora_unet_`` + the diffusers module path
with dots as underscores for SD1/SD2 and + the LDM path for SDXL, PEFT and diffusers write dotted diffusers paths
under ``unet.`` / ``text_encoder.`` / ``text_encoder_2.``, and every trainer names text encoder layers as Hugging
Face's ``CLIPTextModel`` does, even for OpenCLIP towers, whose q, k and v live in one fused ``in_proj_weight``.

Other diffusion models (Wan 2.1...) are matched against their own module paths under the prefixes their trainers
use (ComfyUI's ``diffusion_model.``, diffusers' ``transformer.``, kohya/musubi's ``lora_unet_`` with dots as
underscores), plus the other names a MODEL gives through its optional ``lora_key_aliases()`` (a diffusers port's).

Rather than listing thousands of names, the map is generated from the weights the model actually has: each weight
key gets its diffusers and Hugging Face names (derived from the block structure the keys themselves show), and each
of those all its spellings. So a name maps only to a weight that exists, and a model of another layout simply
matches nothing. Pure functions of key names and shapes: no torch, no model needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

UNET, TE, TE1, TE2 = "unet", "te", "te1", "te2"

# Spellings of each part: (underscored prefixes, dotted prefixes). "te" is the only encoder of SD1/SD2.
_TEXT_PREFIXES = {
    TE: (("lora_te_",), ("text_encoder.", "")),
    TE1: (("lora_te1_",), ("text_encoder.", "")),
    TE2: (("lora_te2_",), ("text_encoder_2.",)),
}
_RESNET = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
           "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
_FIXED = {"time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
          "label_emb.0.0": "add_embedding.linear_1", "label_emb.0.2": "add_embedding.linear_2",
          "input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out"}
_BLOCK = re.compile(r"(input_blocks|output_blocks)\.(\d+)\.(\d+)\.(.+)|middle_block\.(\d+)\.(.+)")
_OPEN_CLIP = re.compile(r"transformer\.resblocks\.(\d+)\.(attn\.in_proj_weight|attn\.out_proj\.weight|"
                        r"mlp\.c_fc\.weight|mlp\.c_proj\.weight)")
_OPEN_CLIP_TO_HF = {"attn.out_proj.weight": "self_attn.out_proj", "mlp.c_fc.weight": "mlp.fc1",
                    "mlp.c_proj.weight": "mlp.fc2"}


@dataclass(frozen=True)
class Target:
    """A weight a LoRA module patches: ``part`` (``unet``, ``te``, ``te1``, ``te2``), its state-dict ``key`` in
    that part's module, the ``rows`` of a fused weight it covers, and whether the file's matrix is transposed."""

    part: str
    key: str
    rows: tuple[int, int] | None = None
    transposed: bool = False


def _resnet(rest: str) -> str:
    for ldm, diffusers in _RESNET.items():
        if rest == ldm or rest.startswith(ldm + "."):
            return diffusers + rest[len(ldm):]
    return rest


def res_blocks_per_level(keys: Iterable[str]) -> int:
    """How many ResBlocks each UNet level has, read from where the first downsampler sits in ``input_blocks``."""
    downs: set[int] = set()
    blocks: set[int] = set()
    for key in keys:
        m = re.match(r"input_blocks\.(\d+)\.0\.(op\.)?", key)
        if m:
            (downs if m.group(2) else blocks).add(int(m.group(1)))
    return min(downs) - 1 if downs else max(blocks - {0}, default=0)


def unet_diffusers_path(path: str, per_level: int) -> str | None:
    """The diffusers ``UNet2DConditionModel`` path of an LDM UNet module path (None for one diffusers lacks)."""
    for ldm, diffusers in _FIXED.items():
        if path == ldm or path.startswith(ldm + "."):
            return diffusers + path[len(ldm):]
    m = _BLOCK.fullmatch(path)
    if m is None:
        return None
    if m.group(5) is not None:  # middle_block: ResBlock, attention, ResBlock
        index, rest = int(m.group(5)), m.group(6)
        return f"mid_block.attentions.0.{rest}" if index == 1 else f"mid_block.resnets.{index // 2}.{_resnet(rest)}"
    kind, n, layer, rest = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
    stride = per_level + 1
    if kind == "input_blocks":
        level, j = divmod(n - 1, stride)
        if j == per_level:
            return f"down_blocks.{level}.downsamplers.0.conv{rest[2:]}" if rest.startswith("op") else None
        side = f"down_blocks.{level}"
    else:
        level, j = divmod(n, stride)
        side = f"up_blocks.{level}"
        if layer > 0 and rest.startswith("conv"):
            return f"{side}.upsamplers.0.{rest}"
    if layer == 0:
        return f"{side}.resnets.{j}.{_resnet(rest)}"
    return f"{side}.attentions.{j}.{rest}"


def _weights(shapes: Mapping[str, Sequence[int]], all_dims: bool = False) -> list[str]:
    """Module paths of the matrices and kernels (the weights LoRAs train), without ``.weight``; with ``all_dims``
    the vectors too (norm scales, which only full ``.diff`` updates patch)."""
    return [key[:-7] for key, shape in shapes.items() if key.endswith(".weight") and (all_dims or len(shape) >= 2)]


# How trainers prefix a diffusion model's own module paths: ComfyUI's state dict, diffusers' pipeline component.
_DOTTED = ("", "diffusion_model.", "model.diffusion_model.", "transformer.", "model.")
_UNDERSCORED = ("lora_unet_", "lora_unet__", "lora_transformer_")  # lora_unet__: VideoX-Fun's Wan LoRAs


def unet_names(shapes: Mapping[str, Sequence[int]], aliases: Mapping[str, Any] | None = None) -> dict[str, Target]:
    """Every spelling of every UNet (diffusion model) weight -> its target.

    :param aliases: other module paths of this model (another code base's names, a diffusers port's) -> the
        model's own module path, or ``(path, (start, end))`` where the alias is those rows of a fused weight
        (diffusers' Flux ``to_q`` is the first third of ``img_attn.qkv``); each gets the same prefixes. A model
        provides them through its ``lora_key_aliases()`` (docs/data-types.md); the model's own names win where
        the two overlap.
    """
    per_level = res_blocks_per_level(shapes)
    names: dict[str, Target] = {}
    for ldm in _weights(shapes, all_dims=True):
        target = Target(UNET, ldm + ".weight")
        spellings = [ldm, f"diffusion_model.{ldm}", f"model.diffusion_model.{ldm}"]
        diffusers = unet_diffusers_path(ldm, per_level)
        if diffusers is not None:
            spellings += [diffusers, f"unet.{diffusers}"]
        spellings += ["lora_unet_" + s.replace(".", "_") for s in (ldm, diffusers) if s is not None]
        names.update(dict.fromkeys(spellings, target))
    # The generic conventions of other diffusion models, never shadowing the above; a bare parameter (a
    # transformer's modulation table) is named by its whole key, as full .diff updates address it.
    bare = [key for key in shapes if not key.endswith((".weight", ".bias")) and "." in key]
    for path, key in [(p, p + ".weight") for p in _weights(shapes, all_dims=True)] + [(k, k) for k in bare]:
        target = Target(UNET, key)
        for spelling in _spellings(path):
            names.setdefault(spelling, target)
    for alias, own in (aliases or {}).items():
        own, rows = (own, None) if isinstance(own, str) else own  # (path, (start, end)): rows of a fused weight
        target = names.get(own)
        if target is not None:
            if rows is not None:
                target = Target(target.part, target.key, tuple(rows), target.transposed)
            for spelling in _spellings(alias):
                names.setdefault(spelling, target)
    return names


def _spellings(path: str) -> list[str]:
    return [p + path for p in _DOTTED] + [p + path.replace(".", "_") for p in _UNDERSCORED]


def text_encoder_hf_names(shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[str, tuple[int, int] | None, bool]]:
    """Hugging Face ``CLIPTextModel`` module path -> (key, rows, transposed) in this encoder's own layout.

    A Hugging Face layout encoder maps to itself; an OpenCLIP one through its resblocks, q/k/v as thirds of
    ``in_proj_weight`` and the ``[in, out]`` text projection as the transpose of Hugging Face's linear.
    """
    if not any(key.startswith("transformer.resblocks.") for key in shapes):
        return {path: (path + ".weight", None, False) for path in _weights(shapes) if path.startswith("text_")}
    names: dict[str, tuple[str, tuple[int, int] | None, bool]] = {}
    for key, shape in shapes.items():
        m = _OPEN_CLIP.fullmatch(key)
        if m is None:
            continue
        layer = f"text_model.encoder.layers.{m.group(1)}"
        if m.group(2) == "attn.in_proj_weight":
            width = shape[1]
            for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
                names[f"{layer}.self_attn.{name}"] = (key, (i * width, (i + 1) * width), False)
        else:
            names[f"{layer}.{_OPEN_CLIP_TO_HF[m.group(2)]}"] = (key, None, False)
    if "text_projection" in shapes:
        names["text_projection"] = ("text_projection", None, True)
    return names


def text_encoder_names(part: str, shapes: Mapping[str, Sequence[int]]) -> dict[str, Target]:
    """Every spelling of every text encoder weight of ``part`` (``te``, ``te1`` or ``te2``) -> its target."""
    underscored, dotted = _TEXT_PREFIXES[part]
    names: dict[str, Target] = {}
    for hf, (key, rows, transposed) in text_encoder_hf_names(shapes).items():
        target = Target(part, key, rows, transposed)
        names.update(dict.fromkeys([p + hf.replace(".", "_") for p in underscored] + [p + hf for p in dotted], target))
    return names


def key_map(parts: Mapping[str, Mapping[str, Sequence[int]]],
            aliases: Mapping[str, str] | None = None) -> dict[str, Target]:
    """LoRA module name, in every spelling -> target, for a model whose parts have these weight shapes.

    :param parts: part name (``unet``, ``te`` for a single text encoder, ``te1`` / ``te2`` for SDXL's two) ->
        that part's state-dict key -> shape.
    :param aliases: the diffusion model's other module names -> its own (see :func:`unet_names`).
    """
    names: dict[str, Target] = {}
    for part, shapes in parts.items():
        names.update(unet_names(shapes, aliases) if part == UNET else text_encoder_names(part, shapes))
    return names


def normalize(name: str) -> str:
    """A dotted name as older diffusers and raw PEFT files spell it -> the plain diffusers module path."""
    name = name.removeprefix("base_model.model.").replace(".processor.", ".")
    return name + ".0" if name.endswith(".to_out") else name


def resolve(name: str, names: Mapping[str, Target]) -> Target | None:
    """The target of a LoRA module name, or None when it names no weight of this model."""
    return names.get(name) or names.get(normalize(name))


def is_text_encoder_name(name: str) -> bool:
    """Whether a module name addresses a text encoder (for model-only loading, which skips those on purpose)."""
    return name.startswith(("lora_te", "text_encoder", "text_model"))
