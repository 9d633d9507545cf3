"""ComfyUI's ``comfy.k_diffusion.utils`` module: the tensor helpers k-diffusion's samplers and packs share.

What differs: the training-side helpers of k-diffusion (``FolderOfImages``, EMA warmup, the optimizer schedules)
are not provided; a pack that uses one is told so by name.
"""

from __future__ import annotations

import torch

__all__ = ["append_dims", "append_zero", "n_params"]


def append_dims(x: torch.Tensor, target_dims: int) -> torch.Tensor:
    """``x`` with singleton dimensions appended until it has ``target_dims`` (a per-batch sigma ``[B]`` broadcast
    over ``[B, C, H, W]``)."""
    missing = target_dims - x.ndim
    if missing < 0:
        raise ValueError(f"input has {x.ndim} dims but target_dims is {target_dims}, which is less")
    return x[(...,) + (None,) * missing]


def append_zero(x: torch.Tensor) -> torch.Tensor:
    """``x`` with a 0 appended (a schedule's final sigma)."""
    return torch.cat([x, x.new_zeros([1])])


def n_params(module: torch.nn.Module) -> int:
    """How many parameters ``module`` has."""
    return sum(p.numel() for p in module.parameters())
