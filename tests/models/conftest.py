"""Fixtures for the model manager tests: tiny models and checkpoints written on the spot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn


@pytest.fixture(autouse=True)
def _two_threads():
    """The suite's budget is set for two cores; keep torch from oversubscribing them."""
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))
    yield
    torch.set_num_threads(before)


class TinyNet(nn.Module):
    """Convs, norms, linears and a parameter of the root itself: every kind of unit placement has to handle."""

    def __init__(self, width: int = 16, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv_in = nn.Conv2d(3, width, 3, padding=1)
        self.norm = nn.GroupNorm(4, width)
        self.blocks = nn.Sequential(*[nn.Conv2d(width, width, 3, padding=1) for _ in range(4)])
        self.head = nn.Linear(width, 5)
        self.scale = nn.Parameter(torch.randn(5))
        self.register_buffer("shift", torch.randn(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.conv_in(x))
        h = self.blocks(torch.relu(h)).mean(dim=(2, 3))
        return self.head(h) * self.scale + self.shift


@pytest.fixture
def tiny_net() -> TinyNet:
    return TinyNet()


def mlp(layers: int, width: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)])


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path
