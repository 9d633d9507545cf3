"""What every LoRA algorithm turns a file's tensors into: an adapter, a callable weight patch for ``PatchedModel``.

An adapter keeps the file's small factors (never a full-size delta) and computes its update when the model manager
patches the weight, in float32 on the weight's device: a 100 MB LoRA stays 100 MB however many clones use it, and a
strength change only re-runs the arithmetic. ``adapter(weight, strength) -> new weight`` is the
``hearth.core.models.PatchedModel`` patch-function contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

import torch


def as_float(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 on ``like``'s device (files store float16 or bfloat16 factors)."""
    return t.to(device=like.device, dtype=torch.float32)


def alpha_scale(alpha: torch.Tensor | None, rank: int) -> float:
    """kohya's scaling: ``alpha / rank``, 1.0 when the file has no alpha (PEFT keeps alpha in its config)."""
    return 1.0 if alpha is None else float(alpha) / rank


class Adapter:
    """A weight update. Subclasses give :meth:`delta` and :attr:`shape`, the shape the update naturally has.

    The update is reshaped to the weight it patches, so a LoRA trained on a linear ``proj_in`` ([out, in]) patches
    a checkpoint that stores it as a 1x1 convolution ([out, in, 1, 1]), and the other way round.
    """

    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return prod(self.shape)

    def fits(self, weight_shape: Sequence[int]) -> bool:
        """Whether this update can patch a weight of ``weight_shape`` (same output rows, same element count)."""
        return bool(weight_shape) and weight_shape[0] == self.shape[0] and prod(weight_shape) == self.numel

    def delta(self, weight: torch.Tensor) -> torch.Tensor:
        """The update at strength 1, float32, shaped like ``weight`` (which is the float32 weight being patched)."""
        raise NotImplementedError

    def __call__(self, weight: torch.Tensor, strength: float) -> torch.Tensor:
        # In place: PatchedModel hands each patch function a float32 copy of the weight that it owns, and a
        # full-size temporary per patched weight is what makes patching a large model slow.
        return weight.add_(self.delta(weight), alpha=strength)


@dataclass(frozen=True, eq=False)
class Rows(Adapter):
    """An adapter on rows ``start:stop`` of a fused weight (OpenCLIP's ``in_proj_weight`` holds q, k and v)."""

    inner: Adapter
    start: int
    stop: int

    @property
    def shape(self) -> tuple[int, ...]:
        return self.inner.shape

    def fits(self, weight_shape: Sequence[int]) -> bool:
        return len(weight_shape) >= 1 and self.stop <= weight_shape[0] and self.inner.fits(
            (self.stop - self.start, *weight_shape[1:]))

    def __call__(self, weight: torch.Tensor, strength: float) -> torch.Tensor:
        rows = weight[self.start:self.stop]
        patched = self.inner(rows, strength)
        if patched.data_ptr() != rows.data_ptr():  # an adapter that returned a new tensor (DoRA)
            rows.copy_(patched)
        return weight


@dataclass(frozen=True, eq=False)
class Transposed(Adapter):
    """An adapter trained on ``W.T``: OpenCLIP stores its text projection as ``[in, out]``, Hugging Face
    CLIP (which LoRA trainers use) as a linear ``[out, in]``."""

    inner: Adapter

    @property
    def shape(self) -> tuple[int, ...]:
        return self.inner.shape

    def fits(self, weight_shape: Sequence[int]) -> bool:
        return len(weight_shape) == 2 and self.inner.fits((weight_shape[1], weight_shape[0]))

    def __call__(self, weight: torch.Tensor, strength: float) -> torch.Tensor:
        return self.inner(weight.t(), strength).t()


@dataclass(frozen=True, eq=False)
class Chain(Adapter):
    """Several adapters on one weight, applied in order (q, k and v of one fused projection)."""

    adapters: tuple[Adapter, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.adapters[0].shape

    def fits(self, weight_shape: Sequence[int]) -> bool:
        return all(a.fits(weight_shape) for a in self.adapters)

    def __call__(self, weight: torch.Tensor, strength: float) -> torch.Tensor:
        for adapter in self.adapters:
            weight = adapter(weight, strength)
        return weight
