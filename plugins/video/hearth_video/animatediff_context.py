"""Context windows: denoising a clip longer than a motion model's frame limit as overlapping windows, blended.

A motion model attends over at most ``max_frames`` frames (24 or 32) and was trained on 16. A longer clip is cut
into windows of ``context_length`` frames that overlap by at least ``context_overlap``; each window is denoised on
its own (its frames are one clip to the motion model; several windows may share one model call, each still
its own clip) and each frame's result is the weighted average of the windows that hold it. The schedules:

* ``uniform``: the fewest windows that keep the overlap, spread evenly from the first frame to the last (the
  overlap is shared out, so every seam gets about the same);
* ``sliding``: windows every ``context_length - context_overlap`` frames from the first, the last one moved back
  to end on the last frame.

Fuse methods weight a frame by where it sits in its window: ``flat`` (equal), ``pyramid`` (rising towards the
window's middle, ``min(i + 1, L - i)``) and ``overlap-linear`` (equal, but ramping over the frames another window
shares). Weights are normalised per frame, so they sum to 1 over the windows holding it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

SCHEDULES = ("uniform", "sliding")
FUSE_METHODS = ("pyramid", "flat", "overlap-linear")


@dataclass(frozen=True)
class ContextOptions:
    """CONTEXT_OPTIONS: how to cut a clip into windows and blend them (AnimateDiffContextOptions' output)."""

    context_length: int = 16
    context_overlap: int = 4
    context_schedule: str = "uniform"
    fuse_method: str = "pyramid"

    def __post_init__(self) -> None:
        if self.context_length < 1:
            raise ValueError(f"context_length must be at least 1, got {self.context_length}")
        if not 0 <= self.context_overlap < self.context_length:
            raise ValueError(f"context_overlap ({self.context_overlap}) must be at least 0 and smaller than "
                             f"context_length ({self.context_length})")
        if self.context_schedule not in SCHEDULES:
            raise ValueError(f"context_schedule must be one of {', '.join(SCHEDULES)}, got {self.context_schedule!r}")
        if self.fuse_method not in FUSE_METHODS:
            raise ValueError(f"fuse_method must be one of {', '.join(FUSE_METHODS)}, got {self.fuse_method!r}")


def context_windows(frames: int, options: ContextOptions) -> list[list[int]]:
    """The frame indices of each window, in order; one window of every frame when the clip fits in one."""
    length, overlap = options.context_length, options.context_overlap
    if frames <= length:
        return [list(range(frames))]
    stride = length - overlap
    if options.context_schedule == "sliding":
        starts = list(range(0, frames - length, stride)) + [frames - length]
    else:
        count = math.ceil((frames - overlap) / stride)  # the fewest windows whose overlaps are >= overlap
        starts = [round(i * (frames - length) / (count - 1)) for i in range(count)]
    return [list(range(s, s + length)) for s in starts]


def _raw_weights(position: int, windows: list[list[int]], fuse: str) -> torch.Tensor:
    window = windows[position]
    n = len(window)
    if fuse == "flat":
        return torch.ones(n)
    if fuse == "pyramid":
        return torch.tensor([float(min(i + 1, n - i)) for i in range(n)])
    # overlap-linear: ramp over the frames shared with the window before and the one after.
    weights = torch.ones(n)
    if position > 0:
        shared = len(set(windows[position - 1]) & set(window))
        weights[:shared] = torch.linspace(1.0 / (shared + 1), shared / (shared + 1), shared)
    if position + 1 < len(windows):
        shared = len(set(windows[position + 1]) & set(window))
        weights[n - shared:] = torch.minimum(weights[n - shared:],
                                             torch.linspace(shared / (shared + 1), 1.0 / (shared + 1), shared))
    return weights


def window_weights(frames: int, windows: list[list[int]], fuse: str) -> list[torch.Tensor]:
    """Per window, the weight of each of its frames, normalised so each frame's weights sum to 1."""
    raw = [_raw_weights(position, windows, fuse) for position in range(len(windows))]
    total = torch.zeros(frames)
    for window, weights in zip(windows, raw, strict=True):
        total[window] += weights
    if bool((total <= 0).any()):
        missing = (total <= 0).nonzero().flatten().tolist()
        raise ValueError(f"context windows leave frame(s) {missing} of {frames} uncovered")
    return [weights / total[window] for window, weights in zip(windows, raw, strict=True)]


Evaluate = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any], int], torch.Tensor]


def denoise_in_windows(evaluate: Evaluate, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                       options: dict[str, Any], frames: int, context: ContextOptions,
                       windows_per_call: int | None = None) -> torch.Tensor:
    """``evaluate(x, sigma, cond, options, window_frames)`` over the windows, blended into one result like ``x``.

    ``x`` holds ``k`` clips of ``frames`` frames one after another (the sampler batches the positive and negative
    prompts this way); every clip is cut the same way. One call takes ``windows_per_call`` windows of every clip
    as that many times ``k`` clips of ``window_frames`` frames, one after another: by default as many windows as
    fit in the batch the sampler asked for (``frames // context_length``), so the windows cost no more memory
    than one pass over the whole clip would, in fewer, fuller calls. Per-item tensors in ``options`` (batch
    ``k * frames``) are cut along with ``x``.
    """
    clips = x.shape[0] // frames
    windows = context_windows(frames, context)
    weights = window_weights(frames, windows, context.fuse_method)
    per_call = max(1, windows_per_call or frames // max(len(w) for w in windows))
    sigma = sigma.reshape(-1).expand(x.shape[0])
    if cond.shape[0] != x.shape[0]:
        cond = cond.repeat(-(-x.shape[0] // cond.shape[0]), 1, 1)[: x.shape[0]]
    out = torch.zeros_like(x)
    offsets = torch.arange(clips)[:, None] * frames
    shape = (-1,) + (1,) * (x.ndim - 1)
    for first in range(0, len(windows), per_call):
        group = range(first, min(first + per_call, len(windows)))
        # Window-major, clip-minor: each run of len(window) items is one window of one clip.
        index = torch.cat([(offsets + torch.tensor(windows[w])[None]).reshape(-1) for w in group]).to(x.device)
        weight = torch.cat([weights[w].repeat(clips) for w in group])
        part = {key: value[index.to(value.device)] if isinstance(value, torch.Tensor) and value.ndim
                and value.shape[0] == x.shape[0] else value for key, value in options.items()}
        result = evaluate(x[index], sigma[index], cond[index], part, len(windows[first]))
        out.index_add_(0, index, result * weight.to(result).view(shape))
    return out
