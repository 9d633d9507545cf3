"""Helpers for the SD node tests: a models folder made by the plugin's tiny-model hook, and a Runtime on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from hearth.core.model_folders import ModelFolders, write_tiny_models
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime


def make_models(folder: Path) -> Path:
    """Every tiny model the installed plugins offer, as ``comfy models make-tiny all`` writes them."""
    write_tiny_models(folder, dict(PluginManager().load(environ={}).resolve_named("register_tiny_models", "tiny model")))
    return folder


@contextmanager
def in_runtime(models_dir: Path) -> Iterator[ModelFolders]:
    """A Runtime on ``models_dir`` (every installed plugin), active for the block: nodes list and load from there."""
    with Runtime.build(models_dir=models_dir, environ={}).activate() as runtime:
        yield runtime.model_folders


def image(batch: int = 1, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    """A smooth test image (gradients plus a little noise), IMAGE-shaped ``[B, H, W, 3]`` in 0..1."""
    gen = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height)[:, None, None]
    xs = torch.linspace(0, 1, width)[None, :, None]
    base = torch.cat([ys.expand(height, width, 1), xs.expand(height, width, 1), (ys * xs).expand(height, width, 1)], -1)
    return (base[None].repeat(batch, 1, 1, 1) + 0.05 * torch.rand(batch, height, width, 3, generator=gen)).clamp(0, 1)
