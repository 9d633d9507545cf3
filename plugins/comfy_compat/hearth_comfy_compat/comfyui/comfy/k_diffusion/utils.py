"""ComfyUI's ``comfy.k_diffusion.utils`` module: the tensor helpers k-diffusion's samplers and packs share.

What differs: the training-side helpers of k-diffusion (EMA warmup, the optimizer schedules) are not provided; a
pack that uses one is told so by name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils import data

__all__ = ["FolderOfImages", "append_dims", "append_zero", "n_params"]


class FolderOfImages(data.Dataset):
    """The images under a folder (recursively, in sorted path order) as a dataset of ``(image,)`` items, each the
    RGB PIL image passed through ``transform``. ``IMG_EXTENSIONS``, the suffixes it takes, is what video and
    image-loading packs filter folders with."""

    IMG_EXTENSIONS = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}

    def __init__(self, root: str | Path, transform: Callable[[Any], Any] | None = None) -> None:
        super().__init__()
        self.root = Path(root)
        self.transform = transform if transform is not None else (lambda image: image)
        self.paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in self.IMG_EXTENSIONS)

    def __repr__(self) -> str:
        return f'FolderOfImages(root="{self.root}", len: {len(self)})'

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: int) -> tuple[Any]:
        from PIL import Image

        with Image.open(self.paths[key]) as image:
            return (self.transform(image.convert("RGB")),)


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
