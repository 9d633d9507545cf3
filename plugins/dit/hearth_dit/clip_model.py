"""Flux's CLIP-L text encoder (as transformers' ``CLIPTextModel``): the pooled output Flux conditions on.

The weights load from the layout of the published ``clip_l.safetensors`` (``text_model.embeddings.*``,
``text_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj,layer_norm1,mlp.fc1,mlp.fc2,layer_norm2}``,
``text_model.final_layer_norm``; a ``text_projection`` is read when present but Flux does not use it). The pooled
output is the final-layer-normed state at the first end-of-text token, as transformers and ComfyUI take it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.formats import ModelFormat

FORMAT_NAME = "clip_l"
PREFIX = "text_model."
_FC1 = "text_model.encoder.layers.0.mlp.fc1.weight"
HEADS_METADATA_KEY = "hearth.num_heads"  # the head count is not in the shapes; a file may say it here


def clip_formats() -> list[ModelFormat]:
    # Only detection for messages: a CLIP-L file is loaded by a loader node that names its type.
    return [ModelFormat(FORMAT_NAME, {"text_model.embeddings.token_embedding.weight": None,
                                      "text_model.final_layer_norm.weight": None, _FC1: None},
                        "CLIP-L text encoder (SD1.x, Flux.1's pooled text)", prefixes=("",),
                        extra={"family": "clip_l"})]


@dataclass(frozen=True)
class CLIPTextConfig:
    vocab_size: int = 49408
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    max_positions: int = 77
    eps: float = 1e-5
    eos_token_id: int = 49407


def is_clip_text(shapes: Mapping[str, tuple[int, ...]]) -> bool:
    return _FC1 in shapes


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], heads: int | None = None,
                       source: str = "state dict") -> CLIPTextConfig:
    """The config of a ``text_model.*`` state dict. Heads are not in the shapes: 64-wide heads, as CLIP-L has."""
    try:
        vocab, hidden = shapes["text_model.embeddings.token_embedding.weight"]
        positions = shapes["text_model.embeddings.position_embedding.weight"][0]
        inner = shapes[_FC1][0]
    except KeyError as exc:
        raise ValueError(f"{source}: not a CLIP text encoder ({exc.args[0]} is missing); DualCLIPLoader type flux "
                         f"takes clip_l.safetensors and a T5-XXL file") from None
    layers = 1 + max(int(k.split(".")[3]) for k in shapes if k.startswith("text_model.encoder.layers."))
    return CLIPTextConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=inner, num_layers=layers,
                          num_heads=heads or max(1, hidden // 64), max_positions=positions,
                          eos_token_id=vocab - 1)


class Attention(nn.Module):
    def __init__(self, c: CLIPTextConfig) -> None:
        super().__init__()
        self.heads = c.num_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(c.hidden_size, c.hidden_size)
                                                                for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (F.linear(x, p.weight.to(x.dtype), p.bias.to(x.dtype)).unflatten(-1, (self.heads, -1))
                   .transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).flatten(2)
        return F.linear(out, self.out_proj.weight.to(x.dtype), self.out_proj.bias.to(x.dtype))


class MLP(nn.Module):
    def __init__(self, c: CLIPTextConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.fc2 = nn.Linear(c.intermediate_size, c.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.linear(x, self.fc1.weight.to(x.dtype), self.fc1.bias.to(x.dtype))
        h = h * torch.sigmoid(1.702 * h)  # CLIP-L's quick GELU
        return F.linear(h, self.fc2.weight.to(x.dtype), self.fc2.bias.to(x.dtype))


class Layer(nn.Module):
    def __init__(self, c: CLIPTextConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(c.hidden_size, eps=c.eps)
        self.self_attn = Attention(c)
        self.layer_norm2 = nn.LayerNorm(c.hidden_size, eps=c.eps)
        self.mlp = MLP(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(_norm(self.layer_norm1, x))
        return x + self.mlp(_norm(self.layer_norm2, x))


def _norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x.float(), norm.normalized_shape, norm.weight.float(), norm.bias.float(), norm.eps).to(x.dtype)


class Embeddings(nn.Module):
    def __init__(self, c: CLIPTextConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embedding = nn.Embedding(c.max_positions, c.hidden_size)


class Encoder(nn.Module):
    def __init__(self, c: CLIPTextConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.num_layers))


class TextModel(nn.Module):
    def __init__(self, c: CLIPTextConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.final_layer_norm = nn.LayerNorm(c.hidden_size, eps=c.eps)


class CLIPTextEncoder(nn.Module):
    """``forward(ids [B, L]) -> (last hidden state [B, L, D], pooled [B, D])`` (no projection)."""

    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__()
        self.config = config
        self.text_model = TextModel(config)
        self.compute_dtype: torch.dtype | None = None

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.text_model.embeddings
        dtype = self.compute_dtype or emb.token_embedding.weight.dtype
        if not dtype.is_floating_point or dtype.itemsize < 2:
            dtype = torch.float32
        ids = ids.to(emb.token_embedding.weight.device)
        x = (emb.token_embedding.weight[ids] + emb.position_embedding.weight[: ids.shape[1]]).to(dtype)
        for layer in self.text_model.encoder.layers:
            x = layer(x)
        x = _norm(self.text_model.final_layer_norm, x)
        # The first end-of-text token: where CLIP was trained to gather the prompt.
        eos = (ids == self.config.eos_token_id).int().argmax(dim=-1)
        return x, x[torch.arange(x.shape[0], device=x.device), eos]


def state_for_encoder(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors :class:`CLIPTextEncoder` reads (``text_projection``, ``logit_scale`` and position-id buffers
    that some files carry dropped); float8 weights of a scaled file dequantized."""
    from .t5_model import dequantize_scaled_fp8

    return dequantize_scaled_fp8({k: v for k, v in state.items()
                                  if k.startswith(PREFIX) and not k.endswith("position_ids")})
