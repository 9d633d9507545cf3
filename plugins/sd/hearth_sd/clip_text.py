"""OpenAI CLIP-L text encoder in the Hugging Face ``CLIPTextModel`` layout, as SD1 and SDXL checkpoints store it.

SD1 keeps it under ``cond_stage_model.transformer.text_model.*``, SDXL under
``conditioner.embedders.0.transformer.text_model.*``. :class:`TextEncoderConfig` and :func:`select_output` are
shared with the OpenCLIP layout in :mod:`hearth_sd.open_clip_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.attention import text_attention

from .ops import compute_dtype_of


@dataclass(frozen=True)
class TextEncoderConfig:
    """Shape of a CLIP text transformer. ``projection_dim`` is None when the checkpoint has no text projection."""

    vocab_size: int = 49408
    width: int = 768
    layers: int = 12
    heads: int = 12
    intermediate: int = 3072
    max_positions: int = 77
    activation: str = "quick_gelu"
    projection_dim: int | None = None
    eps: float = 1e-5


@dataclass
class TextEncoderOutput:
    """``hidden``: the chosen layer's states ``[B, T, width]``; ``pooled``: the EOS token's final state
    (projected when the model has a projection) ``[B, dim]``."""

    hidden: torch.Tensor
    pooled: torch.Tensor


def activation(name: str):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return F.gelu
    raise ValueError(f"unknown text encoder activation {name!r} (expected 'quick_gelu' or 'gelu')")


def select_output(
    states: list[torch.Tensor],
    final: torch.Tensor,
    final_norm: nn.LayerNorm,
    layer: int | None,
    norm_hidden: bool,
) -> torch.Tensor:
    """The hidden states a caller asked for, with ``CLIPSetLastLayer`` semantics.

    :param states: the output of every layer, first to last.
    :param final: the last layer's output after the final layer norm.
    :param layer: None for the final-normed last layer; otherwise a negative index counted from the end
        (-1 = last layer, -2 = penultimate). An index past the first layer means the final-normed last layer.
    :param norm_hidden: apply the final layer norm to a chosen intermediate layer too (SD1 does; SD2/SDXL don't).
    """
    if layer is None or -layer > len(states):
        return final
    if layer >= 0:
        raise ValueError(f"clip layer must be negative (counted from the end), got {layer}")
    hidden = states[layer]
    return final_norm(hidden) if norm_hidden else hidden


def normal_init(*shape: int, std: float = 1.0) -> torch.Tensor:
    """A normally initialised tensor on the current default device; left empty on "meta", where the loader
    builds modules only to fill them from a checkpoint (and where ``normal_`` costs seconds on first use)."""
    t = torch.empty(*shape)
    return t if t.is_meta else t.normal_(0.0, std)


def embedding(num: int, dim: int) -> nn.Embedding:
    return nn.Embedding(num, dim, _weight=normal_init(num, dim))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, *, causal: bool) -> torch.Tensor:
    """Multi-head attention over ``[B, T, width]`` projections, split into ``heads``."""
    return text_attention(q, k, v, heads, causal=causal)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    return attention(q, k, v, heads, causal=True)


class LayerShape(Protocol):
    """What a CLIP transformer layer needs of a config: the text and the vision towers' configs both have it."""

    width: int
    heads: int
    intermediate: int
    activation: str
    eps: float


class _SelfAttention(nn.Module):
    def __init__(self, c: LayerShape, causal: bool):
        super().__init__()
        self.heads = c.heads
        self.causal = causal
        self.q_proj = nn.Linear(c.width, c.width)
        self.k_proj = nn.Linear(c.width, c.width)
        self.v_proj = nn.Linear(c.width, c.width)
        self.out_proj = nn.Linear(c.width, c.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        return self.out_proj(attention(q, k, v, self.heads, causal=self.causal))


class _MLP(nn.Module):
    def __init__(self, c: LayerShape):
        super().__init__()
        self.act = activation(c.activation)
        self.fc1 = nn.Linear(c.width, c.intermediate)
        self.fc2 = nn.Linear(c.intermediate, c.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CLIPLayer(nn.Module):
    """One pre-norm CLIP transformer layer in the Hugging Face layout (``self_attn``, ``layer_norm1``, ``mlp``,
    ``layer_norm2``); the text tower attends causally, the vision tower (:mod:`hearth_sd.clip_vision`) does not."""

    def __init__(self, c: LayerShape, causal: bool = True):
        super().__init__()
        self.self_attn = _SelfAttention(c, causal)
        self.layer_norm1 = nn.LayerNorm(c.width, eps=c.eps)
        self.mlp = _MLP(c)
        self.layer_norm2 = nn.LayerNorm(c.width, eps=c.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class QuickGELU(nn.Module):
    """OpenAI CLIP's activation ``x * sigmoid(1.702 x)`` as a module, for the ``mlp.gelu`` slot of its blocks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """OpenAI CLIP's residual attention block in its original key layout (``attn``, ``ln_1``, ``mlp.c_fc``,
    ``mlp.c_proj``, ``ln_2``), as the union ControlNet's and the style model's small transformers store it.

    ``attn`` is built by the caller (the two files pack their attention weights differently); a subclass whose
    attention takes other arguments overrides :meth:`attend`.
    """

    def __init__(self, width: int, attn: nn.Module):
        super().__init__()
        self.attn = attn
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, width * 4))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(width * 4, width))
        self.ln_2 = nn.LayerNorm(width)

    def attend(self, h: torch.Tensor) -> torch.Tensor:
        return self.attn(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attend(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Embeddings(nn.Module):
    def __init__(self, c: TextEncoderConfig):
        super().__init__()
        self.token_embedding = embedding(c.vocab_size, c.width)
        self.position_embedding = embedding(c.max_positions, c.width)


class _Encoder(nn.Module):
    def __init__(self, c: TextEncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList(CLIPLayer(c) for _ in range(c.layers))


class _TextModel(nn.Module):
    def __init__(self, c: TextEncoderConfig):
        super().__init__()
        self.embeddings = _Embeddings(c)
        self.encoder = _Encoder(c)
        self.final_layer_norm = nn.LayerNorm(c.width, eps=c.eps)


class CLIPTextEncoder(nn.Module):
    """CLIP text transformer whose ``state_dict`` reads ``text_model.*`` (and ``text_projection.weight`` if any)."""

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.config = config
        self.text_model = _TextModel(config)
        if config.projection_dim:
            self.text_projection = nn.Linear(config.width, config.projection_dim, bias=False)

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.text_model.embeddings.token_embedding

    def forward(
        self,
        tokens: torch.Tensor,
        input_embeds: torch.Tensor | None = None,
        layer: int | None = None,
        norm_hidden: bool = True,
    ) -> TextEncoderOutput:
        """Encode ``tokens`` ``[B, T]``; ``input_embeds`` replaces the token lookup (textual inversion).

        The pooled output is read at each row's first end-of-text token (the largest id in the vocabulary).
        """
        tm = self.text_model
        if input_embeds is None:
            input_embeds = tm.embeddings.token_embedding(tokens)
        n = tokens.shape[1]
        dtype = compute_dtype_of(self)
        x = input_embeds.to(dtype) + tm.embeddings.position_embedding.weight[:n].to(dtype)
        states = []
        for block in tm.encoder.layers:
            x = block(x)
            states.append(x)
        final = tm.final_layer_norm(x)
        pooled = final[torch.arange(final.shape[0], device=final.device), tokens.argmax(dim=-1)]
        if self.config.projection_dim:
            pooled = self.text_projection(pooled)
        hidden = select_output(states, final, tm.final_layer_norm, layer, norm_hidden)
        return TextEncoderOutput(hidden, pooled)
