"""ComfyUI's ``comfy.ldm.common_dit``: helpers the diffusion transformers share. Pure torch."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["pad_to_patch_size", "rms_norm"]


def pad_to_patch_size(img: torch.Tensor, patch_size: Any = (2, 2), padding_mode: str = "circular") -> torch.Tensor:
    """``img`` ``[..., H, W]`` (or ``[..., T, H, W]`` with a 3-long ``patch_size``) padded at the end of each
    dimension to a multiple of the patch (circular padding, or ``reflect``/``constant``...)."""
    if padding_mode == "circular" and (torch.jit.is_tracing() or torch.jit.is_scripting()):
        padding_mode = "reflect"
    pad: tuple[int, ...] = ()
    for i in range(img.ndim - 2):
        pad = (0, (patch_size[i] - img.shape[i + 2] % patch_size[i]) % patch_size[i]) + pad
    return torch.nn.functional.pad(img, pad, mode=padding_mode)


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Root-mean-square normalisation over the last dimension, times ``weight`` when given."""
    shape = (x.shape[-1],)
    if weight is None:
        return torch.nn.functional.rms_norm(x, shape, eps=eps)
    return torch.nn.functional.rms_norm(x, shape, weight=weight.to(x), eps=eps)
