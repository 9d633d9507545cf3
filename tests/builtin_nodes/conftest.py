"""Helpers for the builtin node tests: call a node the way the executor does, and tiny test images."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from hearth.core.context import Folders
from hearth.core.nodes import collect_nodes

NODES: dict[str, type] = collect_nodes("hearth.core.builtin_nodes", prefix="")


def call(name: str, **inputs: Any) -> Any:
    """Instantiate builtin node ``name`` and run its FUNCTION; returns what the node returns."""
    cls = NODES[name]
    return getattr(cls(), cls.FUNCTION)(**inputs)


def gradient(height: int = 8, width: int = 12, batch: int = 1) -> torch.Tensor:
    """A ``[B, H, W, 3]`` image whose every pixel differs: red ramps along x, green along y, blue per batch."""
    ys = torch.linspace(0, 1, height)[:, None].expand(height, width)
    xs = torch.linspace(0, 1, width)[None, :].expand(height, width)
    frames = [torch.stack([xs, ys, torch.full_like(xs, b / max(batch, 1))], dim=-1) for b in range(batch)]
    return torch.stack(frames).contiguous()


def ramp(height: int = 8, width: int = 12, batch: int = 1, channels: int = 3) -> torch.Tensor:
    """A ``[B, H, W, C]`` image whose every value differs: 0..1 spread in raster order."""
    count = batch * height * width * channels
    return torch.linspace(0, 1, count).reshape(batch, height, width, channels)


@pytest.fixture(autouse=True)
def _two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))
    yield
    torch.set_num_threads(before)


@pytest.fixture
def folders(hearth_folders: Folders) -> Iterator[Folders]:
    """This test's input/output/temp folders: those of the test's Runtime, which nodes see outside execution too."""
    yield hearth_folders


@pytest.fixture
def node() -> Callable[..., Any]:
    return call
