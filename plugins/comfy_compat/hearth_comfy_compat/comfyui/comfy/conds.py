"""``comfy.conds``: a model input taken from a conditioning, and how several are batched into one evaluation.

``comfy.model_base.BaseModel.extra_conds`` wraps each input in one of these (the text embedding in
``CONDCrossAttn``, an ADM vector in ``CONDRegular``...); ``process_cond`` fits it to a batch and a device,
``can_concat`` / ``concat`` join those of several conditionings into one batch, the way ComfyUI's sampler batches
the positive and negative prompts. Hearth's own samplers batch their region lists themselves; these are the
objects packs build, subclass (``CONDNoiseShape``) and hand to ComfyUI-style code.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from hearth_comfy_compat.comfy_utils import repeat_to_batch_size

# Padding a text embedding to a common length repeats it; more than this many times costs more than it saves.
_MOST_REPEATS = 4


class CONDRegular:
    """A tensor input repeated (or cut) to the batch size."""

    def __init__(self, cond: Any) -> None:
        self.cond = cond

    def _copy_with(self, cond: Any) -> CONDRegular:
        return self.__class__(cond)

    def process_cond(self, batch_size: int, device: Any = None, **kwargs: Any) -> CONDRegular:
        return self._copy_with(repeat_to_batch_size(self.cond, batch_size).to(device))

    def can_concat(self, other: CONDRegular) -> bool:
        return self.cond.shape == other.cond.shape

    def concat(self, others: list[CONDRegular]) -> torch.Tensor:
        return torch.cat([self.cond, *(other.cond for other in others)])

    def size(self) -> list[int]:
        return list(self.cond.size())


class CONDNoiseShape(CONDRegular):
    """An input shaped like the latent, cut to a conditioning's area ``(h, w, y, x)`` before batching."""

    def process_cond(self, batch_size: int, device: Any = None, area: Any = None, **kwargs: Any) -> CONDRegular:
        data = self.cond
        if area is not None:
            h, w, y, x = area[:4]
            data = data[:, :, y:y + h, x:x + w]
        return self._copy_with(repeat_to_batch_size(data, batch_size).to(device))


class CONDCrossAttn(CONDRegular):
    """A text embedding ``[B, tokens, width]``: embeddings of different lengths batch together by repeating each
    to the least common multiple of the lengths (attention over a repeated sequence gives the same result)."""

    def can_concat(self, other: CONDRegular) -> bool:
        mine, theirs = self.cond.shape, other.cond.shape
        if mine == theirs:
            return True
        if mine[0] != theirs[0] or mine[2] != theirs[2]:
            return False
        return math.lcm(mine[1], theirs[1]) // min(mine[1], theirs[1]) <= _MOST_REPEATS

    def concat(self, others: list[CONDRegular]) -> torch.Tensor:
        conds = [self.cond, *(other.cond for other in others)]
        length = math.lcm(*(c.shape[1] for c in conds))
        return torch.cat([c.repeat(1, length // c.shape[1], 1) if c.shape[1] < length else c for c in conds])


class CONDConstant(CONDRegular):
    """A value that is the same for the whole batch (a number, a string): batches only with an equal one."""

    def process_cond(self, batch_size: int, device: Any = None, **kwargs: Any) -> CONDRegular:
        return self._copy_with(self.cond)

    def can_concat(self, other: CONDRegular) -> bool:
        return bool(self.cond == other.cond)

    def concat(self, others: list[CONDRegular]) -> Any:
        return self.cond

    def size(self) -> list[int]:
        return [1]


class CONDList(CONDRegular):
    """A list of tensors, each repeated to the batch size; batches with a list of the same shapes."""

    def process_cond(self, batch_size: int, device: Any = None, **kwargs: Any) -> CONDRegular:
        return self._copy_with([repeat_to_batch_size(c, batch_size).to(device) for c in self.cond])

    def can_concat(self, other: CONDRegular) -> bool:
        return len(self.cond) == len(other.cond) and all(
            a.shape == b.shape for a, b in zip(self.cond, other.cond, strict=True))

    def concat(self, others: list[CONDRegular]) -> list[torch.Tensor]:
        return [torch.cat([c, *(other.cond[i] for other in others)]) for i, c in enumerate(self.cond)]

    def size(self) -> list[int]:
        size = list(self.cond[0].size())
        return [size[0], sum(math.prod(c.size()[1:]) for c in self.cond)]
