"""Helpers for the SD node tests: a models folder made by the plugin's tiny-model hook, installed as the default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from hearth.core import model_folders as mf
from hearth.core.model_folders import write_tiny_models
from hearth.core.plugins import load_plugins


def make_models(folder: Path) -> Path:
    """Every tiny model the installed plugins offer, as ``comfy models make-tiny all`` writes them."""
    write_tiny_models(folder, dict(load_plugins(environ={}).resolve_named("register_tiny_models", "tiny model")))
    return folder


@contextmanager
def default_folders(folders: mf.ModelFolders) -> Iterator[mf.ModelFolders]:
    previous = mf._default
    mf.set_default_model_folders(folders)
    try:
        yield folders
    finally:
        mf.set_default_model_folders(previous)


def image(batch: int = 1, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    """A smooth test image (gradients plus a little noise), IMAGE-shaped ``[B, H, W, 3]`` in 0..1."""
    gen = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height)[:, None, None]
    xs = torch.linspace(0, 1, width)[None, :, None]
    base = torch.cat([ys.expand(height, width, 1), xs.expand(height, width, 1), (ys * xs).expand(height, width, 1)], -1)
    return (base[None].repeat(batch, 1, 1, 1) + 0.05 * torch.rand(batch, height, width, 3, generator=gen)).clamp(0, 1)
