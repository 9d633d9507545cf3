"""LyCORIS LoKr: a Kronecker product, ``delta = scale * kron(w1, w2)``, either factor full or low-rank.

``w1`` is ``lokr_w1`` or ``lokr_w1_a @ lokr_w1_b``; ``w2`` is ``lokr_w2``, ``lokr_w2_a @ lokr_w2_b``, or for a
convolution the Tucker rebuild through ``lokr_t2``. ``alpha / rank`` scales only when a factor is low-rank (the rank
is that factor's inner dimension); with both factors full LyCORIS ignores alpha, and so do we. For a convolution
``w1`` is a matrix and ``w2`` a kernel: the Kronecker product of ``w1[:, :, None, None]`` with ``w2`` has the
weight's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .base import Adapter, as_float
from .loha import tucker


def _has(tensors: Mapping[str, torch.Tensor], name: str) -> bool:
    return name in tensors or (f"{name}_a" in tensors and f"{name}_b" in tensors)


def is_lokr(roles: Mapping[str, torch.Tensor]) -> bool:
    return _has(roles, "lokr_w1") and _has(roles, "lokr_w2")


@dataclass(frozen=True, eq=False)
class Kronecker(Adapter):
    w1: torch.Tensor | None
    w1a: torch.Tensor | None
    w1b: torch.Tensor | None
    w2: torch.Tensor | None
    w2a: torch.Tensor | None
    w2b: torch.Tensor | None
    t2: torch.Tensor | None
    scale: float

    def _w1_shape(self) -> tuple[int, int]:
        return tuple(self.w1.shape) if self.w1 is not None else (self.w1a.shape[0], self.w1b.shape[1])

    def _w2_shape(self) -> tuple[int, ...]:
        if self.w2 is not None:
            return tuple(self.w2.shape)
        if self.t2 is not None:
            return (self.w2a.shape[1], self.w2b.shape[1], *self.t2.shape[2:])
        return (self.w2a.shape[0], *self.w2b.shape[1:])

    @property
    def shape(self) -> tuple[int, ...]:
        (a, b), w2 = self._w1_shape(), self._w2_shape()
        return (a * w2[0], b * w2[1], *w2[2:])

    def delta(self, weight: torch.Tensor) -> torch.Tensor:
        w1 = as_float(self.w1, weight) if self.w1 is not None else as_float(self.w1a, weight) @ as_float(self.w1b, weight)
        if self.w2 is not None:
            w2 = as_float(self.w2, weight)
        elif self.t2 is not None:
            w2 = tucker(as_float(self.t2, weight), as_float(self.w2a, weight), as_float(self.w2b, weight))
        else:
            w2 = as_float(self.w2a, weight) @ as_float(self.w2b, weight).flatten(1)
            w2 = w2.reshape(self._w2_shape())
        w1 = w1.reshape(*w1.shape, *([1] * (w2.dim() - 2)))
        return (torch.kron(w1, w2) * self.scale).reshape(weight.shape)


def convert_lokr(tensors: Mapping[str, torch.Tensor]) -> Kronecker:
    """One module's ``lokr_w1[_a/_b]``, ``lokr_w2[_a/_b]``, optional ``lokr_t2`` and ``alpha`` -> its adapter."""
    get = tensors.get
    rank = None
    if "lokr_w1" not in tensors:
        rank = tensors["lokr_w1_b"].shape[0]
    if "lokr_w2" not in tensors:
        rank = tensors["lokr_w2_b"].shape[0]
    alpha = get("alpha")
    scale = float(alpha) / rank if alpha is not None and rank is not None else 1.0
    return Kronecker(get("lokr_w1"), get("lokr_w1_a"), get("lokr_w1_b"), get("lokr_w2"), get("lokr_w2_a"),
                     get("lokr_w2_b"), get("lokr_t2"), scale)
