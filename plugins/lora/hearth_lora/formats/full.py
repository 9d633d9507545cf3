"""Full-size differences: ``.diff`` (a whole weight's update) and ``.diff_b`` (a bias's), as LyCORIS "full" and
ComfyUI-converted video LoRAs (norms, biases, the output head) store them: ``delta = diff``, no scaling by alpha.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .base import Adapter, as_float


@dataclass(frozen=True, eq=False)
class Full(Adapter):
    diff: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.diff.shape)

    def delta(self, weight: torch.Tensor) -> torch.Tensor:
        return as_float(self.diff, weight).reshape(weight.shape)


def convert_full(tensors: Mapping[str, torch.Tensor]) -> Full:
    return Full(tensors["diff"])
