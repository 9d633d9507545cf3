"""ComfyUI's ``comfy.ldm.flux.math``: Flux's rotary position embedding and its attention. Pure torch."""

from __future__ import annotations

from typing import Any

import torch

from hearth_comfy_compat.comfyui.comfy.ldm.modules.attention import optimized_attention

__all__ = ["apply_rope", "apply_rope1", "attention", "rope"]


def rope(pos: torch.Tensor, dim: int, theta: int) -> torch.Tensor:
    """Rotation matrices ``[..., N, dim / 2, 2, 2]`` for positions ``pos`` ``[..., N]`` (``dim`` even)."""
    if dim % 2:
        raise ValueError("rope: dim must be even")
    scale = torch.linspace(0, (dim - 2) / dim, steps=dim // 2, dtype=torch.float64, device=pos.device)
    omega = 1.0 / (theta ** scale)
    out = torch.einsum("...n,d->...nd", pos.to(torch.float64), omega)
    out = torch.stack([torch.cos(out), -torch.sin(out), torch.sin(out), torch.cos(out)], dim=-1)
    return out.reshape(*out.shape[:-1], 2, 2).float()


def apply_rope1(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """``x`` ``[..., N, D]`` rotated pairwise by ``freqs_cis`` (from :func:`rope`)."""
    pairs = x.to(freqs_cis.dtype).reshape(*x.shape[:-1], -1, 1, 2)
    out = freqs_cis[..., 0] * pairs[..., 0] + freqs_cis[..., 1] * pairs[..., 1]
    return out.reshape(*x.shape).type_as(x)


def apply_rope(xq: torch.Tensor, xk: torch.Tensor, freqs_cis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return apply_rope1(xq, freqs_cis), apply_rope1(xk, freqs_cis)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pe: torch.Tensor | None, mask: Any = None,
              transformer_options: dict[str, Any] | None = None) -> torch.Tensor:
    """Attention of ``[B, heads, N, D]`` tensors after the rotary embedding ``pe``; ``[B, N, heads * D]`` out."""
    if pe is not None:
        q, k = apply_rope(q, k, pe)
    return optimized_attention(q, k, v, q.shape[1], mask=mask, skip_reshape=True,
                               transformer_options=transformer_options or {})
