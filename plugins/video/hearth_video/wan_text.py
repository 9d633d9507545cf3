"""Wan's text encoder: the UMT5 encoder (as transformers' ``UMT5EncoderModel``) and its ``tokenizer.json``.

UMT5 is T5 v1.1 with a relative position bias in every layer: RMS layer norms, attention without the
``1/sqrt(d)`` scale, and a gated-GELU feed-forward. The weights load from the layout of ComfyUI's ``umt5_xxl``
text-encoder files (``shared.weight``, ``encoder.block.N.layer.0.SelfAttention.{q,k,v,o,relative_attention_bias}``,
``encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1,wo}``, ``encoder.final_layer_norm``); the tokenizer is the
``tokenizer.json`` beside the file (``<name>.tokenizer.json`` first, then ``tokenizer.json``), read with the
``tokenizers`` package.

A prompt becomes its tokens and ``</s>``, padded to 512 tokens as Wan was trained; the encoder masks the padding
and its output there is zero, so the diffusion model sees exactly the published pipeline's context.
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

FORMAT_NAME = "umt5"
MIN_LENGTH = 512  # Wan pads every prompt to 512 tokens
MAX_LENGTH = 512
# Non-weight entries some published umt5 files carry beside the tensors the encoder reads.
_IGNORED_KEYS = ("spiece_model", "scaled_fp8")


def umt5_formats() -> list[ModelFormat]:
    return [ModelFormat(FORMAT_NAME, {"shared.weight": None,
                                      "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": None,
                                      "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight": None,
                                      "encoder.block.0.layer.1.DenseReluDense.wi_1.weight": None,
                                      "encoder.final_layer_norm.weight": None},
                        "UMT5 text encoder (Wan 2.1)", prefixes=("",), extra={"family": "umt5"})]


@dataclass(frozen=True)
class UMT5Config:
    vocab_size: int = 256384
    d_model: int = 4096
    d_kv: int = 64
    d_ff: int = 10240
    num_layers: int = 24
    num_heads: int = 64
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], source: str = "state dict") -> UMT5Config:
    try:
        vocab, d_model = shapes["shared.weight"]
        buckets, heads = shapes["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        inner = shapes["encoder.block.0.layer.0.SelfAttention.q.weight"][0]
        d_ff = shapes["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"][0]
    except KeyError as exc:
        raise ValueError(f"{source}: not a UMT5 encoder ({exc.args[0]} is missing); CLIPLoader type wan loads "
                         "umt5_xxl text encoders") from None
    layers = 1 + max(int(k.split(".")[2]) for k in shapes if k.startswith("encoder.block."))
    return UMT5Config(vocab_size=vocab, d_model=d_model, d_kv=inner // heads, d_ff=d_ff, num_layers=layers,
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


def relative_position_bucket(relative: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's bidirectional bucket of ``key - query``: half the buckets per direction, exact up to a quarter of
    them, logarithmic beyond up to ``max_distance``."""
    num_buckets //= 2
    buckets = (relative > 0).long() * num_buckets
    relative = relative.abs()
    max_exact = num_buckets // 2
    large = max_exact + (torch.log(relative.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).long()
    large = large.clamp(max=num_buckets - 1)
    return buckets + torch.where(relative < max_exact, relative, large)


@functools.lru_cache(maxsize=8)
def _buckets(length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    # Every layer and every prompt of one length share these: computed once (a 512 x 512 table for Wan).
    positions = torch.arange(length)
    return relative_position_bucket(positions[None, :] - positions[:, None], num_buckets, max_distance)


class SelfAttention(nn.Module):
    def __init__(self, config: UMT5Config) -> None:
        super().__init__()
        inner = config.num_heads * config.d_kv
        self.config = config
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        self.relative_attention_bias = nn.Embedding(config.relative_attention_num_buckets, config.num_heads)

    def position_bias(self, length: int, device: torch.device) -> torch.Tensor:
        buckets = _buckets(length, self.config.relative_attention_num_buckets,
                           self.config.relative_attention_max_distance).to(device)
        return self.relative_attention_bias.weight.float()[buckets].permute(2, 0, 1)[None]  # [1, heads, L, L]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        heads = self.config.num_heads
        q, k, v = (_linear(x, layer).unflatten(-1, (heads, -1)).transpose(1, 2) for layer in (self.q, self.k, self.v))
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) + self.position_bias(x.shape[1], x.device) + mask
        weights = scores.softmax(dim=-1).to(v.dtype)
        return _linear(torch.matmul(weights, v).transpose(1, 2).flatten(2), self.o)


class SelfAttentionLayer(nn.Module):
    def __init__(self, config: UMT5Config) -> None:
        super().__init__()
        self.SelfAttention = SelfAttention(config)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x + self.SelfAttention(self.layer_norm(x), mask)


class GatedGelu(nn.Module):
    def __init__(self, config: UMT5Config) -> None:
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _linear(F.gelu(_linear(x, self.wi_0), approximate="tanh") * _linear(x, self.wi_1), self.wo)


class FeedForwardLayer(nn.Module):
    def __init__(self, config: UMT5Config) -> None:
        super().__init__()
        self.DenseReluDense = GatedGelu(config)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.DenseReluDense(self.layer_norm(x))


class Block(nn.Module):
    def __init__(self, config: UMT5Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList([SelfAttentionLayer(config), FeedForwardLayer(config)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.layer[1](self.layer[0](x, mask))


class Encoder(nn.Module):
    def __init__(self, config: UMT5Config) -> None:
        super().__init__()
        self.block = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.final_layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)


class UMT5Encoder(nn.Module):
    """``forward(ids [B, L], attention_mask [B, L] or None) -> hidden states [B, L, d_model]``."""

    def __init__(self, config: UMT5Config) -> None:
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
        if attention_mask is None:
            mask = torch.zeros(1, 1, 1, ids.shape[1], device=x.device)
        else:
            keep = attention_mask.to(x.device).bool()[:, None, None, :]
            mask = torch.zeros(keep.shape, device=x.device).masked_fill(~keep, torch.finfo(torch.float32).min)
        for block in self.encoder.block:
            x = block(x, mask)
        return self.encoder.final_layer_norm(x)


def state_for_encoder(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a published umt5 file that the encoder reads: extras like ``spiece_model`` dropped, and
    the weights of a "scaled fp8" file multiplied by their scales."""
    from .wan_model import dequantize_scaled_fp8

    return dequantize_scaled_fp8({k: v for k, v in state.items() if k not in _IGNORED_KEYS})


# -- tokenizer ---------------------------------------------------------------------------------------------------


def tokenizer_path_for(model_path: str | Path) -> Path:
    """The ``tokenizer.json`` that belongs to a text-encoder file, or a clear error saying where to put one."""
    model_path = Path(model_path)
    for candidate in (model_path.with_name(model_path.stem + ".tokenizer.json"), model_path.with_name("tokenizer.json")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{model_path}: no tokenizer beside this text encoder; put the UMT5 tokenizer's "
                            f"tokenizer.json (from google/umt5-xxl) at {model_path.with_name('tokenizer.json')} "
                            f"or {model_path.stem}.tokenizer.json")


class UMT5Tokenizer:
    """Token ids of a prompt: the ``tokenizer.json``'s tokens, then ``</s>``, padded with ``<pad>`` to 512."""

    def __init__(self, path: str | Path, min_length: int = MIN_LENGTH, max_length: int = MAX_LENGTH) -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        try:
            self.tokenizer = Tokenizer.from_file(str(self.path))
        except Exception as exc:  # tokenizers raises a bare Exception for unreadable JSON
            raise ValueError(f"{self.path}: not a tokenizers tokenizer.json ({exc})") from None
        self.eos = self._special("</s>", 1)
        self.pad = self._special("<pad>", 0)
        self.min_length, self.max_length = min_length, max_length

    def _special(self, token: str, default: int) -> int:
        found = self.tokenizer.token_to_id(token)
        return default if found is None else found

    def __call__(self, text: str) -> tuple[list[int], list[int]]:
        """``(ids, mask)``: mask 1 on the prompt's tokens and ``</s>``, 0 on the padding."""
        ids, mask, _ = self.weighted(text, emphasis=False)
        return ids, mask

    def weighted(self, text: str, emphasis: bool = True) -> tuple[list[int], list[int], list[float]]:
        """``(ids, mask, weights)``; with ``emphasis`` the prompt's ``(text:1.3)`` / ``[text]`` syntax (the core's
        parser, as ComfyUI reads prompts for every text encoder) gives each token its weight."""
        if emphasis:
            from hearth.core.prompt_weights import parse_prompt_weights

            segments = parse_prompt_weights(text)
        else:
            segments = [(text, 1.0)]
        ids: list[int] = []
        weights: list[float] = []
        for segment, weight in segments:
            found = self.tokenizer.encode(segment, add_special_tokens=False).ids
            ids += found
            weights += [weight] * len(found)
        ids, weights = ids[: self.max_length - 1] + [self.eos], weights[: self.max_length - 1] + [1.0]
        length = max(len(ids), self.min_length)
        pad = length - len(ids)
        return ids + [self.pad] * pad, [1] * len(ids) + [0] * pad, weights + [1.0] * pad


def encode(encoder: UMT5Encoder, ids: list[int], mask: list[int], device: torch.device,
           weights: list[float] | None = None, eos: int = 1, pad: int = 0) -> torch.Tensor:
    """Wan's context ``[1, L, d_model]`` float32 on the CPU: the encoder's states, zero on the padding.

    A token of weight ``w`` becomes ``z_empty + w * (z - z_empty)``, ``z_empty`` being the empty prompt's state
    at the same position (ComfyUI's rule, shared with the SD plugin), zero past the empty prompt's ``</s>``.
    """
    ids_t = torch.tensor([ids], device=device)
    mask_t = torch.tensor([mask], device=device)
    weighted = weights is not None and any(w != 1.0 for w in weights)
    if weighted:
        empty = [eos] + [pad] * (len(ids) - 1)
        ids_t = torch.cat([ids_t, torch.tensor([empty], device=device)])
        mask_t = torch.cat([mask_t, torch.tensor([[1] + [0] * (len(ids) - 1)], device=device)])
    with torch.no_grad():
        states = encoder(ids_t, mask_t).float() * mask_t[..., None].float()
    if weighted:
        # The empty prompt's padding is zero too, as ComfyUI masks both before weighting.
        w = torch.tensor(weights, device=states.device, dtype=states.dtype)[None, :, None]
        states = (states[1:] + w * (states[:1] - states[1:])) * mask_t[:1, :, None].float()
    return states.cpu()
