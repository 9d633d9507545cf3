"""Flux.1 in diffusers' layout (``FluxTransformer2DModel``): its files converted to the published layout on load,
and its module names for LoRAs trained on it.

diffusers splits what the published layout fuses: the double blocks' ``img_attn.qkv`` / ``txt_attn.qkv`` into
``attn.to_q/k/v`` / ``attn.add_q/k/v_proj``, the single blocks' ``linear1`` into ``attn.to_q/k/v`` and
``proj_mlp``; and its final norm orders the modulation (scale, shift) where the published one has (shift, scale).
Pure functions of names and tensors: :func:`convert_flux_diffusers` joins the pieces back with ``torch.cat``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import torch

DIFFUSERS_SENTINELS = ("x_embedder.weight", "context_embedder.weight", "transformer_blocks.0.attn.to_q.weight",
                       "transformer_blocks.0.attn.add_q_proj.weight", "time_text_embed.timestep_embedder.linear_1.weight",
                       "norm_out.linear.weight", "proj_out.weight")

# One-to-one renames: published module path pattern -> diffusers' (weights and biases alike).
_RENAMES = (
    (r"time_in\.in_layer", "time_text_embed.timestep_embedder.linear_1"),
    (r"time_in\.out_layer", "time_text_embed.timestep_embedder.linear_2"),
    (r"vector_in\.in_layer", "time_text_embed.text_embedder.linear_1"),
    (r"vector_in\.out_layer", "time_text_embed.text_embedder.linear_2"),
    (r"guidance_in\.in_layer", "time_text_embed.guidance_embedder.linear_1"),
    (r"guidance_in\.out_layer", "time_text_embed.guidance_embedder.linear_2"),
    (r"txt_in", "context_embedder"),
    (r"img_in", "x_embedder"),
    (r"final_layer\.linear", "proj_out"),
    (r"double_blocks\.(\d+)\.img_mod\.lin", r"transformer_blocks.\1.norm1.linear"),
    (r"double_blocks\.(\d+)\.txt_mod\.lin", r"transformer_blocks.\1.norm1_context.linear"),
    (r"double_blocks\.(\d+)\.img_attn\.proj", r"transformer_blocks.\1.attn.to_out.0"),
    (r"double_blocks\.(\d+)\.txt_attn\.proj", r"transformer_blocks.\1.attn.to_add_out"),
    (r"double_blocks\.(\d+)\.img_mlp\.0", r"transformer_blocks.\1.ff.net.0.proj"),
    (r"double_blocks\.(\d+)\.img_mlp\.2", r"transformer_blocks.\1.ff.net.2"),
    (r"double_blocks\.(\d+)\.txt_mlp\.0", r"transformer_blocks.\1.ff_context.net.0.proj"),
    (r"double_blocks\.(\d+)\.txt_mlp\.2", r"transformer_blocks.\1.ff_context.net.2"),
    (r"single_blocks\.(\d+)\.modulation\.lin", r"single_transformer_blocks.\1.norm.linear"),
    (r"single_blocks\.(\d+)\.linear2", r"single_transformer_blocks.\1.proj_out"),
)
_NORMS = (  # published RMS-norm scale -> diffusers' weight
    (r"double_blocks\.(\d+)\.img_attn\.norm\.query_norm\.scale", r"transformer_blocks.\1.attn.norm_q.weight"),
    (r"double_blocks\.(\d+)\.img_attn\.norm\.key_norm\.scale", r"transformer_blocks.\1.attn.norm_k.weight"),
    (r"double_blocks\.(\d+)\.txt_attn\.norm\.query_norm\.scale", r"transformer_blocks.\1.attn.norm_added_q.weight"),
    (r"double_blocks\.(\d+)\.txt_attn\.norm\.key_norm\.scale", r"transformer_blocks.\1.attn.norm_added_k.weight"),
    (r"single_blocks\.(\d+)\.norm\.query_norm\.scale", r"single_transformer_blocks.\1.attn.norm_q.weight"),
    (r"single_blocks\.(\d+)\.norm\.key_norm\.scale", r"single_transformer_blocks.\1.attn.norm_k.weight"),
)
# Fused published weights -> the diffusers modules they are made of, in row order.
_FUSED = (
    (r"double_blocks\.(\d+)\.img_attn\.qkv", ("attn.to_q", "attn.to_k", "attn.to_v"), "transformer_blocks"),
    (r"double_blocks\.(\d+)\.txt_attn\.qkv", ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
     "transformer_blocks"),
    (r"single_blocks\.(\d+)\.linear1", ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"),
     "single_transformer_blocks"),
)


def is_diffusers_layout(keys: Iterable[str]) -> bool:
    found = set(keys)
    return all(key in found for key in DIFFUSERS_SENTINELS)


def _swap_halves(t: torch.Tensor) -> torch.Tensor:
    first, second = t.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def _block_count(keys: Iterable[str], prefix: str) -> int:
    found = [int(m.group(1)) for k in keys if (m := re.match(re.escape(prefix) + r"\.(\d+)\.", k))]
    return 1 + max(found, default=-1)


def _regex(theirs: str) -> re.Pattern[str]:
    """A diffusers name template (``transformer_blocks.\\1.norm1.linear``) as a pattern matching its names."""
    return re.compile(re.escape(theirs).replace(re.escape("\\1"), r"(\d+)"))


def _template(ours: str) -> str:
    """A published-name pattern (``double_blocks\\.(\\d+)\\.img_mod\\.lin``) as an expansion template."""
    return ours.replace(r"(\d+)", r"\1").replace("\\.", ".")


def convert_flux_diffusers(state: Mapping[str, torch.Tensor], source: str = "state dict") -> dict[str, torch.Tensor]:
    """A ``FluxTransformer2DModel`` state dict as the published layout (``double_blocks.N.img_attn.qkv`` ...).

    Raises ``ValueError`` naming the first diffusers key a block lacks, so a truncated conversion never loads.
    """
    state = dict(state)
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        try:
            return state.pop(key)
        except KeyError:
            raise ValueError(f"{source}: a diffusers Flux transformer without {key}; is the file complete?") from None

    counts = {"transformer_blocks": _block_count(state, "transformer_blocks"),
              "single_transformer_blocks": _block_count(state, "single_transformer_blocks")}
    for pattern, parts, block in _FUSED:
        published = _template(pattern).replace(r"\1", "{}")
        for n in range(counts[block]):
            for leaf in ("weight", "bias"):
                names = [f"{block}.{n}.{part}.{leaf}" for part in parts]
                if leaf == "bias" and names[0] not in state:
                    continue  # no qkv bias
                out[f"{published.format(n)}.{leaf}"] = torch.cat([take(name) for name in names], dim=0)
    for leaf in ("weight", "bias"):
        out[f"final_layer.adaLN_modulation.1.{leaf}"] = _swap_halves(take(f"norm_out.linear.{leaf}"))
    pairs = [(_regex(theirs), _template(ours)) for ours, theirs in _RENAMES + _NORMS]
    for key in list(state):
        path, _, leaf = key.rpartition(".")
        for pattern, ours in pairs:
            m = pattern.fullmatch(key) or pattern.fullmatch(path)
            if m:
                out[m.expand(ours) + ("" if m.string == key else "." + leaf)] = state.pop(key)
                break
    if state:
        shown = ", ".join(sorted(state)[:3])
        raise ValueError(f"{source}: {len(state)} diffusers key(s) Hearth's Flux.1 does not know ({shown}); is it "
                         f"a Flux.1 dev or schnell transformer?")
    return out


def diffusers_lora_aliases(keys: Iterable[str], hidden_size: int, mlp_hidden: int
                           ) -> dict[str, str | tuple[str, tuple[int, int]]]:
    """diffusers' module names -> the published module they are (a path), or a row range of it
    (``(path, (start, end))``: ``to_q`` is rows ``0..hidden`` of ``img_attn.qkv``), for LoRAs trained on diffusers.

    The final norm's diffusers projection has its halves swapped; a LoRA on it cannot be a row range and gets no
    alias (trainers leave it out).
    """
    aliases: dict[str, str | tuple[str, tuple[int, int]]] = {}
    modules = {key.rsplit(".", 1)[0] for key in keys if key.endswith(".weight")}
    for path in modules:
        for ours, theirs in _RENAMES:
            m = re.fullmatch(ours, path)
            if m:
                aliases[m.expand(theirs)] = path
                break
        for ours, parts, block in _FUSED:
            m = re.fullmatch(ours, path)
            if m:
                widths = [hidden_size] * 3 + ([mlp_hidden] if len(parts) == 4 else [])
                start = 0
                for part, width in zip(parts, widths, strict=True):
                    aliases[f"{block}.{m.group(1)}.{part}"] = (path, (start, start + width))
                    start += width
    return aliases


def to_diffusers(state: Mapping[str, torch.Tensor], hidden_size: int) -> dict[str, torch.Tensor]:
    """A published-layout state dict in diffusers' layout (the inverse of :func:`convert_flux_diffusers`), for the
    diffusers-layout tiny file."""
    out: dict[str, torch.Tensor] = {}
    fused = [(re.compile(pattern + r"\.(weight|bias)"), parts, block) for pattern, parts, block in _FUSED]
    pairs = [(re.compile(ours + (r"\.(weight|bias)" if not ours.endswith("scale") else "")), theirs)
             for ours, theirs in _RENAMES + _NORMS]
    for key, value in state.items():
        if key.startswith("final_layer.adaLN_modulation.1."):
            out["norm_out.linear." + key.rsplit(".", 1)[1]] = _swap_halves(value)
            continue
        m = next(((m, parts, block) for pattern, parts, block in fused if (m := pattern.fullmatch(key))), None)
        if m is not None:
            match, parts, block = m
            sizes = [hidden_size] * 3 + ([value.shape[0] - 3 * hidden_size] if len(parts) == 4 else [])
            for part, piece in zip(parts, value.split(sizes, dim=0), strict=True):
                out[f"{block}.{match.group(1)}.{part}.{match.group(2)}"] = piece.contiguous()
            continue
        for pattern, theirs in pairs:
            match = pattern.fullmatch(key)
            if match:
                leaf = "" if theirs.endswith("weight") and key.endswith("scale") else "." + match.groups()[-1]
                out[match.expand(theirs) + leaf] = value
                break
        else:
            raise ValueError(f"{key}: not a key of the published Flux.1 layout")
    return out
