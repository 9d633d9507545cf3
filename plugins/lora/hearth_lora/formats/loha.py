"""LyCORIS LoHa: the Hadamard product of two low-rank matrices, ``delta = alpha / rank * (w1a @ w1b) * (w2a @ w2b)``.

With ``hada_t1`` / ``hada_t2`` (Tucker form, convolutions) each factor is rebuilt through its core tensor
``t [rank, rank, kh, kw]``; ``w*_a`` is then stored as ``[rank, out]`` rather than ``[out, rank]``. The rank is
``hada_w1_b``'s first dimension, as LyCORIS counts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .base import Adapter, alpha_scale, as_float

ROLES = frozenset({"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"})


def tucker(core: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
    """``[out, in, kh, kw]`` from a Tucker core ``[r, r, kh, kw]``, ``wa [r, out]`` and ``wb [r, in]``."""
    return torch.einsum("abhw,ao,bi->oihw", core, wa, wb.flatten(1))


@dataclass(frozen=True, eq=False)
class Hadamard(Adapter):
    w1a: torch.Tensor
    w1b: torch.Tensor
    w2a: torch.Tensor
    w2b: torch.Tensor
    t1: torch.Tensor | None
    t2: torch.Tensor | None
    scale: float

    @property
    def shape(self) -> tuple[int, ...]:
        if self.t1 is not None:
            return (self.w1a.shape[1], self.w1b.shape[1], *self.t1.shape[2:])
        return (self.w1a.shape[0], *self.w1b.shape[1:])

    def _factor(self, wa: torch.Tensor, wb: torch.Tensor, core: torch.Tensor | None, like: torch.Tensor):
        wa, wb = as_float(wa, like), as_float(wb, like)
        if core is None:
            return wa @ wb.flatten(1)
        return tucker(as_float(core, like), wa, wb)

    def delta(self, weight: torch.Tensor) -> torch.Tensor:
        one = self._factor(self.w1a, self.w1b, self.t1, weight)
        two = self._factor(self.w2a, self.w2b, self.t2, weight)
        return (one * two * self.scale).reshape(weight.shape)


def convert_loha(tensors: Mapping[str, torch.Tensor]) -> Hadamard:
    """One module's ``hada_w{1,2}_{a,b}``, optional ``hada_t{1,2}`` and ``alpha`` -> its adapter."""
    t1, t2 = tensors.get("hada_t1"), tensors.get("hada_t2")
    if (t1 is None) != (t2 is None):
        raise ValueError("hada_t1 and hada_t2 come together (LoHa's Tucker form); the file has only one")
    rank = tensors["hada_w1_b"].shape[0]
    return Hadamard(tensors["hada_w1_a"], tensors["hada_w1_b"], tensors["hada_w2_a"], tensors["hada_w2_b"], t1, t2,
                    alpha_scale(tensors.get("alpha"), rank))
