"""Context windows: every frame covered, overlaps kept, blending weights summing to 1, clips cut alike."""

from __future__ import annotations

import pytest
import torch
from hearth_video.animatediff_context import (
    FUSE_METHODS,
    SCHEDULES,
    ContextOptions,
    context_windows,
    denoise_in_windows,
    window_weights,
)

CASES = [(frames, length, overlap) for frames in (1, 7, 8, 9, 16, 24, 33, 100) for length, overlap in
         ((8, 0), (8, 2), (8, 4), (16, 4), (16, 15), (1, 0))]


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(("frames", "length", "overlap"), CASES)
def test_windows_cover_every_frame_and_keep_the_overlap(schedule: str, frames: int, length: int,
                                                         overlap: int) -> None:
    windows = context_windows(frames, ContextOptions(length, overlap, schedule))
    assert sorted({f for w in windows for f in w}) == list(range(frames))
    for window in windows:
        assert window == list(range(window[0], window[0] + len(window)))  # contiguous
        assert len(window) == min(length, frames)
    for before, after in zip(windows, windows[1:], strict=False):
        assert after[0] > before[0]
        assert len(set(before) & set(after)) >= overlap


def test_the_schedules_place_windows_as_documented() -> None:
    assert [w[0] for w in context_windows(24, ContextOptions(8, 2, "sliding"))] == [0, 6, 12, 16]
    # uniform: the fewest windows (ceil((24 - 2) / 6) = 4), spread evenly from frame 0 to frame 16.
    assert [w[0] for w in context_windows(24, ContextOptions(8, 2, "uniform"))] == [0, 5, 11, 16]
    assert context_windows(8, ContextOptions(8, 2, "uniform")) == [list(range(8))]


@pytest.mark.parametrize("fuse", FUSE_METHODS)
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(("frames", "length", "overlap"), CASES)
def test_blending_weights_sum_to_one(fuse: str, schedule: str, frames: int, length: int, overlap: int) -> None:
    windows = context_windows(frames, ContextOptions(length, overlap, schedule, fuse))
    weights = window_weights(frames, windows, fuse)
    total = torch.zeros(frames)
    for window, weight in zip(windows, weights, strict=True):
        assert weight.shape == (len(window),) and bool((weight > 0).all())
        total[window] += weight
    assert torch.allclose(total, torch.ones(frames), atol=1e-6)


def test_pyramid_weights_favour_the_middle_of_a_window() -> None:
    windows = context_windows(12, ContextOptions(8, 4, "sliding", "pyramid"))  # [0..7], [4..11]
    first, second = window_weights(12, windows, "pyramid")
    # Frame 4 is the first window's 5th (weight 4) and the second's 1st (weight 1): 4/5 and 1/5.
    assert first[4].item() == pytest.approx(0.8) and second[0].item() == pytest.approx(0.2)
    assert first[:4].tolist() == [1.0] * 4  # frames only the first window holds


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="context_overlap"):
        ContextOptions(8, 8)
    with pytest.raises(ValueError, match="context_schedule"):
        ContextOptions(8, 2, "looped")
    with pytest.raises(ValueError, match="fuse_method"):
        ContextOptions(8, 2, "uniform", "gaussian")


def test_windowed_denoise_cuts_every_clip_alike_and_blends_back() -> None:
    frames, clips = 24, 2
    x = torch.randn(clips * frames, 4, 3, 3)
    cond = torch.arange(clips * frames, dtype=torch.float32).view(-1, 1, 1).expand(-1, 2, 5)
    sigma = torch.full((clips * frames,), 3.0)
    calls = []

    def evaluate(x_in, sigma_in, cond_in, options, window):
        calls.append(cond_in[:, 0, 0].long().tolist())
        assert x_in.shape[0] % (clips * window) == 0 and options["pooled"].shape[0] == x_in.shape[0]
        return x_in * 2  # per frame: blending must give back exactly 2 * x

    options = {"pooled": torch.zeros(clips * frames, 7), "width": 64}
    context = ContextOptions(8, 2, "sliding")  # windows at 0, 6, 12, 16
    out = denoise_in_windows(evaluate, x, sigma, cond, options, frames, context, windows_per_call=1)
    assert torch.allclose(out, 2 * x, atol=1e-6)
    # Each call holds the same window of both clips: frames 0..7 of the first, then 24..31 (the second's 0..7).
    assert calls[0] == list(range(8)) + list(range(24, 32))
    assert len(calls) == 4 and calls[-1] == list(range(16, 24)) + list(range(40, 48))

    calls.clear()  # by default, as many windows per call as fit in the clip's own batch: 24 // 8 = 3
    assert torch.allclose(denoise_in_windows(evaluate, x, sigma, cond, options, frames, context), 2 * x, atol=1e-6)
    assert [len(c) for c in calls] == [3 * 16, 16]
    assert calls[0][16:32] == list(range(6, 14)) + list(range(30, 38))  # the second window, of each clip


def test_windows_batched_together_stay_separate_clips() -> None:
    # A stand-in for the motion model: each run of `window` items is one clip, mixed within itself only.
    def evaluate(x_in, sigma_in, cond_in, options, window):
        runs = x_in.view(-1, window, *x_in.shape[1:])
        return (runs - runs.mean(dim=1, keepdim=True) + runs.pow(2).mean(dim=1, keepdim=True)).view_as(x_in)

    frames = 40
    x = torch.randn(2 * frames, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    sigma, cond = torch.ones(2 * frames), torch.zeros(1, 3, 5)
    for schedule in SCHEDULES:
        context = ContextOptions(8, 3, schedule, "pyramid")
        one_by_one = denoise_in_windows(evaluate, x, sigma, cond, {}, frames, context, windows_per_call=1)
        for per_call in (2, 3, None, 100):
            batched = denoise_in_windows(evaluate, x, sigma, cond, {}, frames, context, windows_per_call=per_call)
            assert torch.allclose(batched, one_by_one, atol=1e-6), (schedule, per_call)
