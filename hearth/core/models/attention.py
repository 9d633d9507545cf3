"""Attention computed as ComfyUI computes it on each device, so a CPU run gives ComfyUI's numbers to the bit.

Every family's models attend through these functions (the SD plugin's UNet, text encoders and VAE; the video
plugin's Wan transformer and AnimateDiff motion modules; the DiT plugin's transformers), which is why they live in
core. ComfyUI on a CPU (its default, without ``--use-pytorch-cross-attention``) picks three kernels:

- the UNet's attention (and every transformer it runs through ``optimized_attention``, Wan's and AnimateDiff's
  included): its sub-quadratic kernel.
  At image sizes the keys always fit one chunk, so per chunk of at most 4,096 queries it is
  ``baddbmm(q, kᵀ, alpha=scale, beta=0)`` on contiguous ``[batch * heads, tokens, head_dim]`` tensors, a softmax
  over the keys, and ``bmm`` with the values;
- the text encoders' attention ("basic", as it picks for small inputs): ``einsum`` of queries and keys times the
  scale, plus the additive mask, a softmax, and ``einsum`` with the values;
- the VAE's single-head attention ("split"): ``bmm(q, k) * scale``, a softmax, and ``bmm(v, probsᵀ)``.

The same formulas in another order (``scaled_dot_product_attention``'s fused kernels) differ in the last bits, which
a UNet, CFG and 8-bit conversion turn into flipped pixels. Elsewhere (GPUs) all three are torch's
``scaled_dot_product_attention``, as ComfyUI's PyTorch attention is there. ``HEARTH_CPU_ATTENTION=sdpa`` picks that on
a CPU too: at 512x512 its fused kernel is about 3x faster than ComfyUI's, and uses no memory for the score matrix,
at the price of images that differ from ComfyUI's in a few pixels by one level.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

QUERY_CHUNK = 4096  # the query chunk ComfyUI's sub-quadratic kernel takes when memory allows (always on a CPU)


def uses_comfyui_kernels(device: torch.device | str) -> bool:
    """Whether attention on ``device`` runs ComfyUI's CPU kernels (which hold a score matrix) rather than
    ``scaled_dot_product_attention`` (fused: no score matrix)."""
    return torch.device(device).type == "cpu" and os.environ.get("HEARTH_CPU_ATTENTION", "comfyui") != "sdpa"


def score_bytes(batch_heads: int, queries: int, keys: int, dtype: torch.dtype, device: torch.device | str) -> int:
    """Peak bytes of the score matrix :func:`unet_attention` holds on ``device``: one chunk of at most
    ``QUERY_CHUNK`` queries against every key, and its softmax, for each of ``batch_heads`` heads; 0 where attention
    is fused. Memory estimates add it: at Wan's video sizes it is the largest buffer of a step."""
    if not uses_comfyui_kernels(device):
        return 0
    item = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 4
    return 2 * batch_heads * min(queries, QUERY_CHUNK) * keys * item


def _comfyui_math(t: torch.Tensor) -> bool:
    return uses_comfyui_kernels(t.device)


def _to_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, N, heads * d]`` -> contiguous ``[B * heads, N, d]``."""
    b, n, width = t.shape
    return t.reshape(b, n, heads, width // heads).permute(0, 2, 1, 3).reshape(b * heads, n, width // heads)


def _from_heads(t: torch.Tensor, batch: int, heads: int) -> torch.Tensor:
    """``[B * heads, N, d]`` -> ``[B, N, heads * d]``."""
    _, n, d = t.shape
    return t.reshape(batch, heads, n, d).permute(0, 2, 1, 3).reshape(batch, n, heads * d)


def unet_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head attention over projected ``[B, N, heads * d]`` tensors (queries and keys may differ in length),
    returned in that layout: the UNet's self- and cross-attention."""
    b = q.shape[0]
    if not _comfyui_math(q):
        split = [t.reshape(b, t.shape[1], heads, t.shape[2] // heads).transpose(1, 2) for t in (q, k, v)]
        out = F.scaled_dot_product_attention(*split)
        return out.transpose(1, 2).reshape(b, q.shape[1], -1)
    query, value = _to_heads(q, heads), _to_heads(v, heads)
    d = query.shape[-1]
    key_t = k.reshape(b, k.shape[1], heads, d).permute(0, 2, 3, 1).reshape(b * heads, d, k.shape[1])
    scale = d ** -0.5
    chunks = []
    for start in range(0, query.shape[1], QUERY_CHUNK):
        scores = torch.baddbmm(torch.empty(1, 1, 1, dtype=query.dtype), query[:, start:start + QUERY_CHUNK], key_t,
                               alpha=scale, beta=0)
        chunks.append(torch.bmm(scores.softmax(dim=-1), value))
    out = chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)
    return _from_heads(out, b, heads)


def text_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, *, causal: bool) -> torch.Tensor:
    """Multi-head self-attention of a text encoder over ``[B, T, heads * d]``, causal when asked."""
    b, n, width = q.shape
    if not _comfyui_math(q):
        split = [t.view(b, n, heads, width // heads).transpose(1, 2) for t in (q, k, v)]
        out = F.scaled_dot_product_attention(*split, is_causal=causal)
        return out.transpose(1, 2).reshape(b, n, width)
    query, key, value = (_to_heads(t, heads) for t in (q, k, v))
    scores = torch.einsum("b i d, b j d -> b i j", query, key) * (width // heads) ** -0.5
    if causal:  # ComfyUI's causal mask: the dtype's lowest finite value above the diagonal, added
        scores.add_(torch.full((n, n), -torch.finfo(scores.dtype).max, dtype=scores.dtype).triu_(1))
    out = torch.einsum("b i j, b j d -> b i d", scores.softmax(dim=-1), value)
    return _from_heads(out, b, heads)


def vae_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Single-head attention over every pixel of ``[B, C, H, W]`` projections, returned in that shape."""
    b, c, h, w = q.shape
    if not _comfyui_math(q):
        split = [t.reshape(b, 1, c, h * w).transpose(2, 3) for t in (q, k, v)]
        return F.scaled_dot_product_attention(*split).transpose(2, 3).reshape(b, c, h, w)
    query = q.reshape(b, c, h * w).permute(0, 2, 1)
    scores = torch.bmm(query, k.reshape(b, c, h * w)) * int(c) ** -0.5
    probs = scores.softmax(dim=2).permute(0, 2, 1)
    return torch.bmm(v.reshape(b, c, h * w), probs).reshape(b, c, h, w)
