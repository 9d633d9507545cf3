"""Guidance: the CFG formula, regions (area, mask, strength) and their average, timestep ranges, batching."""

from __future__ import annotations

import torch
from hearth_samplers.guidance import Guidance, predict
from hearth_samplers.regions import resolve

from .toy_model import ToyModel, text

SHAPE = torch.Size([1, 4, 32, 32])


def _predict(model, conditionings, sigma=1.0):
    x = torch.zeros(SHAPE)
    regions = [resolve(c, SHAPE, model.sampling) if c is not None else None for c in conditionings]
    return predict(model, regions, x, torch.tensor([sigma]))


def test_cfg_is_uncond_plus_scale_times_difference_in_one_batched_call() -> None:
    model = ToyModel(constant=True)
    positive, negative = [[text(2.0), {}]], [[text(0.5), {}]]
    guide = Guidance(model, resolve(positive, SHAPE, model.sampling), resolve(negative, SHAPE, model.sampling), 7.5)
    out = guide(torch.zeros(SHAPE), torch.tensor([3.0]))
    assert torch.allclose(out, torch.full(SHAPE, 0.5 + (2.0 - 0.5) * 7.5))
    assert len(model.calls) == 1 and model.calls[0]["shape"][0] == 2  # positive and negative together


def test_cfg_of_one_skips_the_negative() -> None:
    model = ToyModel(constant=True)
    positive, negative = [[text(2.0), {}]], [[text(-9.0), {}]]
    guide = Guidance(model, resolve(positive, SHAPE, model.sampling), resolve(negative, SHAPE, model.sampling), 1.0)
    out = guide(torch.zeros(SHAPE), torch.tensor([3.0]))
    assert torch.allclose(out, torch.full(SHAPE, 2.0))
    assert len(model.calls) == 1 and model.calls[0]["shape"][0] == 1


def test_overlapping_area_is_averaged_and_feathered_at_inner_edges() -> None:
    model = ToyModel(constant=True)
    # Whole image says 1; an area over the right half (h=32, w=16, y=0, x=16) says 5.
    positive = [[text(1.0), {}], [text(5.0), {"area": (32, 16, 0, 16), "strength": 1.0}]]
    (out,) = _predict(model, [positive])
    assert torch.allclose(out[..., :16], torch.ones(1, 4, 32, 16))
    assert torch.allclose(out[..., 24:], torch.full((1, 4, 32, 8), 3.0))  # (1 + 5) / 2 beyond the feather
    # The area's left edge lies inside the image: its weight ramps 1/4, 2/4, ... over min(8, 16 // 4) = 4 columns,
    # ComfyUI's ramp.
    assert torch.allclose(out[0, 0, 0, 16], torch.tensor((1 + 5 / 4) / (1 + 1 / 4)))
    assert torch.allclose(out[0, 0, 0, 19], torch.full((), 3.0)) and torch.allclose(out[..., 20:], out[..., 24:25])
    # The crops ran as separate calls of their own size.
    assert sorted(call["shape"][3] for call in model.calls) == [16, 32]


def test_percentage_area_and_strength() -> None:
    model = ToyModel(constant=True)
    positive = [[text(1.0), {}], [text(4.0), {"area": ("percentage", 1.0, 0.5, 0.0, 0.5), "strength": 3.0}]]
    (out,) = _predict(model, [positive])
    assert torch.allclose(out[..., 24:], torch.full((1, 4, 32, 8), (1 + 4 * 3) / (1 + 3)))
    assert torch.allclose(out[..., :16], torch.ones(1, 4, 32, 16))


def test_mask_limits_an_entry_and_mask_strength_scales_it() -> None:
    model = ToyModel(constant=True)
    mask = torch.zeros(64, 64)
    mask[:32] = 1.0  # top half, at image-ish resolution: resized to the latent
    positive = [[text(1.0), {}], [text(9.0), {"mask": mask, "mask_strength": 0.5}]]
    (out,) = _predict(model, [positive])
    assert torch.allclose(out[:, :, :14], torch.full((1, 4, 14, 32), (1 + 9 * 0.5) / 1.5))
    assert torch.allclose(out[:, :, 18:], torch.ones(1, 4, 14, 32))


def test_mask_bounds_become_the_area() -> None:
    model = ToyModel(constant=True)
    mask = torch.zeros(32, 32)
    mask[4:20, 8:24] = 1.0
    positive = [[text(3.0), {"mask": mask, "set_area_to_bounds": True}]]
    regions = resolve(positive, SHAPE, model.sampling)
    assert regions[0].area == (16, 16, 4, 8)
    predict(model, [regions], torch.zeros(SHAPE), torch.tensor([1.0]))
    assert model.calls[0]["shape"] == (1, 4, 16, 16)


def test_timestep_range_skips_entries_outside_it() -> None:
    model = ToyModel(constant=True)
    sampling = model.sampling
    positive = [[text(1.0), {}], [text(7.0), {"start_percent": 0.0, "end_percent": 0.5}],
                [text(-3.0), {"start_percent": 0.5, "end_percent": 1.0}]]
    early = sampling.percent_to_sigma(0.2)
    late = sampling.percent_to_sigma(0.8)
    (out_early,) = _predict(model, [positive], sigma=early)
    (out_late,) = _predict(model, [positive], sigma=late)
    assert torch.allclose(out_early, torch.full(SHAPE, (1 + 7) / 2))
    assert torch.allclose(out_late, torch.full(SHAPE, (1 - 3) / 2))


def test_uncovered_pixels_predict_zero_not_nan() -> None:
    model = ToyModel(constant=True)
    (out,) = _predict(model, [[[text(2.0), {"area": (8, 8, 0, 0)}]]])
    assert torch.isfinite(out).all() and out[0, 0, 31, 31] == 0


def test_options_reach_the_model_and_batched_tensors_are_concatenated() -> None:
    model = ToyModel(constant=True)
    positive = [[text(1.0), {"pooled_output": torch.ones(1, 5), "width": 512}]]
    negative = [[text(0.0), {"pooled_output": torch.zeros(1, 5), "width": 512}]]
    _predict(model, [positive, negative])
    (call,) = model.calls
    assert call["options"]["width"] == 512 and "area" not in call["options"]
    assert torch.equal(call["options"]["pooled_output"][:, 0], torch.tensor([1.0, 0.0]))
