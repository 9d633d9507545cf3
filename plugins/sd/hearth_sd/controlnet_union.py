"""The parts that make a ControlNet a union ControlNet (xinsir's controlnet-union-sdxl, "ControlNet++"), as
ComfyUI's ``comfy/cldm/cldm.py`` runs them.

A union ControlNet is one network for several control types. On top of the plain ControlNet it has a
``task_embedding`` (one vector per type), a small transformer (``transformer_layes``, the file's spelling) and
``spatial_ch_projs``, which shift the encoded hint by a per-type vector, and ``control_add_embedding``, which adds
the chosen type (one-hot, through sinusoidal embeddings) to the timestep embedding. SetUnionControlNetType picks
the type; "auto" leaves the type vector empty: the hint is encoded as by a plain ControlNet and only the (all-zero)
type embedding is added. As in ComfyUI, one hint image is used: xinsir's multi-image fusion is not.

Differences from diffusers' ``ControlNetUnionModel``, which follows xinsir's training code: diffusers also feeds
the latent's own mean feature to the transformer; ComfyUI (the reference here) feeds the hint's alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.attention import unet_attention

from .clip_text import ResidualAttentionBlock
from .unet import timestep_embedding

UNION_HEADS = 8
CONTROL_TYPE_EMBED_DIM = 256


class UnionAttention(nn.Module):
    """Multi-head self-attention with one packed input projection (``in_proj``: q, k and v stacked)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj = nn.Linear(width, width * 3)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.in_proj(x).split(x.shape[2], dim=2)
        return self.out_proj(unet_attention(q, k, v, self.heads))


class UnionTransformerBlock(ResidualAttentionBlock):
    """A pre-norm transformer block (CLIP's residual attention block), over the hints' mean features."""

    def __init__(self, width: int, heads: int = UNION_HEADS):
        super().__init__(width, UnionAttention(width, heads))


class ControlTypeEmbedding(nn.Module):
    """The chosen control types, one-hot over ``types``, each value embedded sinusoidally, then two linears:
    added to the timestep embedding."""

    def __init__(self, types: int, out_dim: int, in_dim: int = CONTROL_TYPE_EMBED_DIM):
        super().__init__()
        self.types = types
        self.in_dim = in_dim
        self.linear_1 = nn.Linear(in_dim * types, out_dim)
        self.linear_2 = nn.Linear(out_dim, out_dim)

    def forward(self, control_type: Sequence[int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        one_hot = torch.zeros(self.types, device=device)
        one_hot[list(control_type)] = 1.0
        embedded = timestep_embedding(one_hot, self.in_dim).to(dtype).reshape(1, self.types * self.in_dim)
        return self.linear_2(F.silu(self.linear_1(embedded)))


def union_hint(model: nn.Module, hint: torch.Tensor, control_type: Sequence[int]) -> torch.Tensor:
    """The encoded hint shifted by the type's vector (ComfyUI's ``union_controlnet_merge``, which encodes one
    hint image, for the first type given: SetUnionControlNetType gives one).

    ``model``: a union :class:`hearth_sd.controlnet_model.ControlNetModel`.
    """
    encoded = model.input_hint_block(hint)
    features = (encoded.mean(dim=(2, 3)) + model.task_embedding[control_type[0]].to(encoded.dtype))[:, None]
    mixed = model.transformer_layes(features)
    shift = model.spatial_ch_projs(mixed[:, 0])
    return encoded + shift[:, :, None, None]
