"""Low-rank LoRA and LyCORIS LoCon: ``delta = alpha / rank * up @ down`` (a conv through ``lora_mid`` when Tucker).

kohya and LyCORIS name the factors ``lora_up`` / ``lora_down``, PEFT ``lora_B`` / ``lora_A``, older diffusers
``up`` / ``down``; the file reader gives them here as ``lora_up`` / ``lora_down`` whatever the spelling. LoCon is the
same arithmetic on a convolution: ``down`` is ``[rank, in, kh, kw]``, ``up`` ``[out, rank, 1, 1]``; with
``lora_mid`` ``[rank, rank, kh, kw]`` (LoCon's Tucker form) ``down`` is 1x1 and the kernel lives in ``mid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .base import Adapter, alpha_scale, as_float

ROLES = frozenset({"lora_up", "lora_down"})  # what a module needs to be a LoRA


@dataclass(frozen=True, eq=False)
class LowRank(Adapter):
    up: torch.Tensor
    down: torch.Tensor
    mid: torch.Tensor | None
    scale: float

    @property
    def shape(self) -> tuple[int, ...]:
        if self.mid is not None:
            return (self.up.shape[0], self.down.shape[1], *self.mid.shape[2:])
        return (self.up.shape[0], *self.down.shape[1:])

    def __call__(self, weight: torch.Tensor, strength: float) -> torch.Tensor:
        flat = weight.view(weight.shape[0], -1)
        if self.mid is not None or flat.shape[1] != self.down[0].numel():
            return super().__call__(weight, strength)
        # One fused multiply-add into the weight: no full-size delta is ever allocated.
        up, down = as_float(self.up, weight).flatten(1), as_float(self.down, weight).flatten(1)
        flat.addmm_(up, down, alpha=strength * self.scale)
        return weight

    def delta(self, weight: torch.Tensor) -> torch.Tensor:
        up, down = as_float(self.up, weight).flatten(1), as_float(self.down, weight).flatten(1)
        if self.mid is None:
            product = up @ down
        else:
            product = torch.einsum("oa,abhw,bi->oihw", up, as_float(self.mid, weight), down)
        return (product * self.scale).reshape(weight.shape)


def convert_lora(tensors: Mapping[str, torch.Tensor]) -> LowRank:
    """One module's ``lora_up``, ``lora_down`` and optional ``lora_mid`` / ``alpha`` -> its adapter."""
    up, down = tensors["lora_up"], tensors["lora_down"]
    rank = down.shape[0]
    if up.shape[1] != rank:
        raise ValueError(f"lora_up is {tuple(up.shape)} but lora_down is {tuple(down.shape)}: ranks differ")
    return LowRank(up, down, tensors.get("lora_mid"), alpha_scale(tensors.get("alpha"), rank))
