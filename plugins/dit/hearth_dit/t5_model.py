"""Flux's T5-XXL v1.1 text encoder (as transformers' ``T5EncoderModel``) and its SentencePiece ``tokenizer.json``.

T5 v1.1: RMS layer norms, attention without the ``1/sqrt(d)`` scale, one relative position bias table (in block 0,
shared by every layer), a gated-GELU feed-forward. The weights load from the layout of the published
``t5xxl_fp16.safetensors`` (``shared.weight``, ``encoder.block.N.layer.0.SelfAttention.{q,k,v,o}``,
``encoder.block.0.layer.0.SelfAttention.relative_attention_bias``, ``encoder.block.N.layer.1.DenseReluDense.
{wi_0,wi_1,wo}``, ``encoder.final_layer_norm``) and of ComfyUI's scaled-fp8 files (weights times ``scale_weight``).

The tokenizer is a ``tokenizers`` ``tokenizer.json`` found beside the model file (:func:`tokenizer_path_for`);
Hearth never downloads one. Flux reads a prompt as its tokens and ``</s>``, padded with ``<pad>`` to at least 256
tokens and attended whole (no mask), as black-forest-labs' and ComfyUI's pipelines do.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.formats import ModelFormat

FORMAT_NAME = "t5xxl"
MIN_LENGTH = 256  # Flux pads every prompt to 256 T5 tokens
_BIAS = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
# Non-weight entries some published files carry beside the tensors the encoder reads.
_IGNORED = ("spiece_model", "scaled_fp8", "encoder.embed_tokens.weight", "logit_scale")


def t5_formats() -> list[ModelFormat]:
    return [ModelFormat(FORMAT_NAME, {_BIAS: None, "encoder.block.0.layer.1.DenseReluDense.wi_1.weight": None,
                                      "encoder.final_layer_norm.weight": None},
                        "T5-XXL v1.1 text encoder (Flux.1, DualCLIPLoader type flux)", prefixes=("",),
                        extra={"family": "t5"})]


@dataclass(frozen=True)
class T5Config:
    vocab_size: int = 32128
    d_model: int = 4096
    d_kv: int = 64
    d_ff: int = 10240
    num_layers: int = 24
    num_heads: int = 64
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6


def is_t5(shapes: Mapping[str, tuple[int, ...]]) -> bool:
    return _BIAS in shapes and "encoder.block.0.layer.1.DenseReluDense.wi_1.weight" in shapes


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], source: str = "state dict") -> T5Config:
    try:
        vocab, d_model = shapes.get("shared.weight") or shapes["encoder.embed_tokens.weight"]
        buckets, heads = shapes[_BIAS]
        inner = shapes["encoder.block.0.layer.0.SelfAttention.q.weight"][0]
        d_ff = shapes["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"][0]
    except KeyError as exc:
        raise ValueError(f"{source}: not a T5 v1.1 encoder ({exc.args[0]} is missing); DualCLIPLoader type flux "
                         f"takes t5xxl_fp16.safetensors (or its fp8 forms) and clip_l.safetensors") from None
    layers = 1 + max(int(k.split(".")[2]) for k in shapes if k.startswith("encoder.block."))
    return T5Config(vocab_size=vocab, d_model=d_model, d_kv=inner // heads, d_ff=d_ff, num_layers=layers,
                    num_heads=heads, relative_attention_num_buckets=buckets)


class T5LayerNorm(nn.Module):
    """RMS norm without mean subtraction or bias, computed in float32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight.float() * x32).to(x.dtype)


def _linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    return F.linear(x, layer.weight.to(x.dtype))


@functools.lru_cache(maxsize=8)
def _buckets(length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's bidirectional bucket of ``key - query`` for every pair of ``length`` positions: half the buckets per
    direction, exact up to a quarter of them, logarithmic beyond up to ``max_distance``."""
    positions = torch.arange(length)
    relative = positions[None, :] - positions[:, None]
    half = num_buckets // 2
    buckets = (relative > 0).long() * half
    relative = relative.abs()
    exact = half // 2
    large = exact + (torch.log(relative.float().clamp(min=1) / exact) / math.log(max_distance / exact)
                     * (half - exact)).long()
    return buckets + torch.where(relative < exact, relative, large.clamp(max=half - 1))


class SelfAttention(nn.Module):
    def __init__(self, config: T5Config, has_bias: bool) -> None:
        super().__init__()
        inner = config.num_heads * config.d_kv
        self.heads = config.num_heads
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        if has_bias:
            self.relative_attention_bias = nn.Embedding(config.relative_attention_num_buckets, config.num_heads)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = (_linear(x, layer).unflatten(-1, (self.heads, -1)).transpose(1, 2) for layer in (self.q, self.k, self.v))
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) + bias  # T5 has no 1/sqrt(d) scale
        return _linear(torch.matmul(scores.softmax(dim=-1).to(v.dtype), v).transpose(1, 2).flatten(2), self.o)


class SelfAttentionLayer(nn.Module):
    def __init__(self, config: T5Config, has_bias: bool) -> None:
        super().__init__()
        self.SelfAttention = SelfAttention(config, has_bias)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return x + self.SelfAttention(self.layer_norm(x), bias)


class GatedGelu(nn.Module):
    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _linear(F.gelu(_linear(x, self.wi_0), approximate="tanh") * _linear(x, self.wi_1), self.wo)


class FeedForwardLayer(nn.Module):
    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.DenseReluDense = GatedGelu(config)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.DenseReluDense(self.layer_norm(x))


class Block(nn.Module):
    def __init__(self, config: T5Config, has_bias: bool) -> None:
        super().__init__()
        self.layer = nn.ModuleList([SelfAttentionLayer(config, has_bias), FeedForwardLayer(config)])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.layer[1](self.layer[0](x, bias))


class Encoder(nn.Module):
    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.block = nn.ModuleList(Block(config, i == 0) for i in range(config.num_layers))
        self.final_layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)


class T5Encoder(nn.Module):
    """``forward(ids [B, L], attention_mask [B, L] or None) -> last hidden states [B, L, d_model]``."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = Encoder(config)
        self.compute_dtype: torch.dtype | None = None

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        dtype = self.compute_dtype or self.shared.weight.dtype
        if not dtype.is_floating_point or dtype.itemsize < 2:
            dtype = torch.float32
        x = self.shared.weight[ids.to(self.shared.weight.device)].to(dtype)
        cfg = self.config
        table = self.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight.float()
        buckets = _buckets(ids.shape[1], cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance)
        bias = table[buckets.to(x.device)].permute(2, 0, 1)[None]  # [1, heads, L, L], shared by every layer
        if attention_mask is not None:
            keep = attention_mask.to(x.device).bool()[:, None, None, :]
            bias = bias.masked_fill(~keep, torch.finfo(torch.float32).min)
        for block in self.encoder.block:
            x = block(x, bias)
        return self.encoder.final_layer_norm(x)


def dequantize_scaled_fp8(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's scaled-fp8 tensors (``X.weight`` in float8 with ``X.scale_weight``) as bfloat16 ``weight * scale``;
    other tensors unchanged. Done once at load: T5 runs each weight once per prompt, so a per-call cast saves
    memory only while the encoder is resident, which is short."""
    out = {}
    for key, value in state.items():
        if key.endswith((".scale_weight", ".scale_input")):
            continue
        scale = state.get(key[: -len("weight")] + "scale_weight") if key.endswith(".weight") else None
        if scale is not None:
            value = (value.float() * scale.float()).to(torch.bfloat16)
        elif value.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            value = value.to(torch.bfloat16)
        out[key] = value
    return out


def state_for_encoder(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a published T5 file that :class:`T5Encoder` reads (``encoder.embed_tokens`` standing in
    for a missing ``shared``; extras dropped; scaled fp8 dequantized)."""
    state = dict(state)
    if "shared.weight" not in state and "encoder.embed_tokens.weight" in state:
        state["shared.weight"] = state["encoder.embed_tokens.weight"]
    return dequantize_scaled_fp8({k: v for k, v in state.items() if k not in _IGNORED})


# -- tokenizer ---------------------------------------------------------------------------------------------------


def tokenizer_path_for(model_path: str | Path) -> Path:
    """The T5 ``tokenizer.json`` of a text-encoder file: ``<name>.tokenizer.json`` beside it, else
    ``t5_tokenizer/tokenizer.json`` in its folder (ComfyUI's folder name); a clear error saying where to put one."""
    model_path = Path(model_path)
    candidates = (model_path.with_name(model_path.stem + ".tokenizer.json"),
                  model_path.parent / "t5_tokenizer" / "tokenizer.json")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{model_path}: no T5 tokenizer beside this text encoder; put the tokenizer.json of "
                            f"google/t5-v1_1-xxl (the tokenizers library's format) at {candidates[1]} or "
                            f"{candidates[0]}")


class T5Tokenizer:
    """A prompt's token ids, ``</s>`` and ``<pad>`` up to ``min_length``, with the prompt's emphasis weights."""

    def __init__(self, path: str | Path, min_length: int = MIN_LENGTH) -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        try:
            self.tokenizer = Tokenizer.from_file(str(self.path))
        except Exception as exc:  # tokenizers raises a bare Exception for unreadable JSON
            raise ValueError(f"{self.path}: not a tokenizers tokenizer.json ({exc})") from None
        self.eos = self._special("</s>", 1)
        self.pad = self._special("<pad>", 0)
        self.min_length = min_length

    def _special(self, token: str, default: int) -> int:
        found = self.tokenizer.token_to_id(token)
        return default if found is None else found

    def weighted(self, text: str) -> tuple[list[int], list[float]]:
        """``(ids, weights)``: the prompt's ``(text:1.3)`` syntax (the core's parser) gives each token its weight."""
        from hearth.core.prompt_weights import parse_prompt_weights

        ids: list[int] = []
        weights: list[float] = []
        for segment, weight in parse_prompt_weights(text):
            found = self.tokenizer.encode(segment, add_special_tokens=False).ids
            ids += found
            weights += [weight] * len(found)
        ids, weights = ids + [self.eos], weights + [1.0]
        pad = max(0, self.min_length - len(ids))
        return ids + [self.pad] * pad, weights + [1.0] * pad


def encode(encoder: T5Encoder, ids: list[int], weights: list[float], device: torch.device, eos: int = 1,
           pad: int = 0) -> torch.Tensor:
    """Flux's context ``[1, L, d_model]`` float32 on the CPU: T5's last hidden states over every token.

    A token of weight ``w`` becomes ``z_empty + w * (z - z_empty)``, ``z_empty`` being the empty prompt's state at
    the same position (ComfyUI's rule for every text encoder).
    """
    ids_t = torch.tensor([ids], device=device)
    weighted = any(w != 1.0 for w in weights)
    if weighted:
        ids_t = torch.cat([ids_t, torch.tensor([[eos] + [pad] * (len(ids) - 1)], device=device)])
    with torch.no_grad():
        states = encoder(ids_t).float()
    if weighted:
        w = torch.tensor(weights, device=states.device, dtype=states.dtype)[None, :, None]
        states = states[1:] + w * (states[:1] - states[1:])
    return states.cpu()
