"""DoRA (Liu et al. 2024, "Weight-Decomposed Low-Rank Adaptation"): a LoRA on the direction, a learned magnitude.

``W' = m * (W + delta) / ||W + delta||``. The norm runs along one axis, and the files say which by the shape of the
magnitude: PEFT's ``lora_magnitude_vector`` is ``[out]`` (one norm per output row, over the inputs), LyCORIS'
``dora_scale`` is ``[1, in, ...]`` (one norm per input column, over the outputs, as the paper writes it) or
``[out, 1, ...]`` when it was trained on the output axis. The patch depends on the weight it lands on, so it is a
function of the base weight, not a delta. Strength interpolates: ``W + strength * (W' - W)``, so 0 leaves the
weight alone and 1 is DoRA as trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Adapter, as_float

EPS = torch.finfo(torch.float32).eps  # keeps an all-zero row from dividing by zero


@dataclass(frozen=True, eq=False)
class Decomposed(Adapter):
    inner: Adapter
    magnitude: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return self.inner.shape

    def _per_output_row(self) -> bool:
        m = self.magnitude
        return m.dim() == 1 or not (m.shape[0] == 1 and self.shape[0] != 1)

    def fits(self, weight_shape) -> bool:
        axis = 0 if self._per_output_row() else 1
        return self.inner.fits(weight_shape) and len(weight_shape) > axis and (
            self.magnitude.numel() == weight_shape[axis])

    def __call__(self, weight: torch.Tensor, strength: float) -> torch.Tensor:
        merged = weight + self.inner.delta(weight)
        if self._per_output_row():
            norm = merged.flatten(1).norm(dim=1).reshape(-1, *[1] * (weight.dim() - 1))
            magnitude = as_float(self.magnitude, weight).reshape(norm.shape)
        else:
            norm = merged.transpose(0, 1).flatten(1).norm(dim=1).reshape(1, -1, *[1] * (weight.dim() - 2))
            magnitude = as_float(self.magnitude, weight).reshape(norm.shape)
        decomposed = merged * (magnitude / (norm + EPS))
        return weight + strength * (decomposed - weight)


def with_magnitude(adapter: Adapter, magnitude: torch.Tensor) -> Decomposed:
    """Wrap any adapter (LoRA, LoHa, LoKr) with the DoRA magnitude stored beside it."""
    return Decomposed(adapter, magnitude)
