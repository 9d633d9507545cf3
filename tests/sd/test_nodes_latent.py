"""The SD plugin's LATENT nodes: ComfyUI's semantics on small tensors, batch edge cases, and runs through the executor."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hearth_sd.nodes_latent import NODES, EmptyLatentImage, LatentComposite, SetLatentNoiseMask
from hearth_sd.nodes_latent_batch import LatentFromBatch, RepeatLatentBatch
from hearth_sd.nodes_latent_upscale import LatentUpscale, LatentUpscaleBy, bislerp

from hearth.core.executor import Executor
from hearth.core.executor.essential import register_types
from hearth.core.node_registry import NodeRegistry

COMFYUI_LATENT_NODES = {"EmptyLatentImage", "LatentUpscale", "LatentUpscaleBy", "LatentComposite",
                        "SetLatentNoiseMask", "RepeatLatentBatch", "LatentFromBatch"}


def numbered(*shape: int) -> torch.Tensor:
    """A tensor whose every element differs, so a misplaced item or pixel shows."""
    return torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)


# -- EmptyLatentImage ------------------------------------------------------------------------------------------


def test_nodes_exported_under_comfyui_names() -> None:
    assert set(NODES) == COMFYUI_LATENT_NODES


def test_empty_latent_is_four_zero_channels_at_an_eighth_of_the_size() -> None:
    (latent,) = EmptyLatentImage().generate(width=520, height=264, batch_size=3)
    assert set(latent) == {"samples"}
    assert latent["samples"].shape == (3, 4, 33, 65)
    assert latent["samples"].dtype == torch.float32
    assert not latent["samples"].any()


def test_empty_latent_inputs_match_comfyui() -> None:
    required = EmptyLatentImage.INPUT_TYPES()["required"]
    assert {k: (v[1]["default"], v[1]["min"], v[1].get("step")) for k, v in required.items()} == {
        "width": (512, 16, 8), "height": (512, 16, 8), "batch_size": (1, 1, None)}
    assert required["batch_size"][1]["max"] == 4096


# -- LatentUpscale / LatentUpscaleBy ---------------------------------------------------------------------------


def test_upscale_nearest_doubles_every_latent_pixel() -> None:
    samples = numbered(1, 2, 8, 9)
    (out,) = LatentUpscale().upscale({"samples": samples}, "nearest-exact", width=144, height=128, crop="disabled")
    expected = samples.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.equal(out["samples"], expected)


def test_upscale_zero_width_keeps_the_aspect_ratio() -> None:
    latent = {"samples": torch.zeros(1, 4, 8, 16)}  # a 128 x 64 image
    (out,) = LatentUpscale().upscale(latent, "bilinear", width=0, height=128, crop="disabled")
    assert out["samples"].shape == (1, 4, 16, 32)
    (out,) = LatentUpscale().upscale(latent, "bilinear", width=512, height=0, crop="disabled")
    assert out["samples"].shape == (1, 4, 32, 64)


def test_upscale_both_zero_returns_the_latent_unchanged() -> None:
    latent = {"samples": torch.ones(1, 4, 8, 8)}
    (out,) = LatentUpscale().upscale(latent, "bislerp", width=0, height=0, crop="center")
    assert out is latent


def test_upscale_raises_small_targets_to_64_pixels_as_comfyui() -> None:
    (out,) = LatentUpscale().upscale({"samples": torch.zeros(1, 4, 4, 4)}, "area", width=16, height=8, crop="disabled")
    assert out["samples"].shape == (1, 4, 8, 8)


def test_upscale_center_crop_takes_the_middle_before_resizing() -> None:
    samples = numbered(1, 1, 8, 16)
    # A square target from a 2:1 latent: a quarter of the width is cut from each side, then the size is kept.
    (out,) = LatentUpscale().upscale({"samples": samples}, "nearest-exact", width=64, height=64, crop="center")
    assert torch.equal(out["samples"], samples[:, :, :, 4:12])


def test_upscale_keeps_the_other_keys_and_leaves_the_input_alone() -> None:
    mask = torch.ones(1, 1, 16, 16)
    latent = {"samples": torch.ones(1, 4, 2, 2), "noise_mask": mask, "batch_index": [7]}
    (out,) = LatentUpscale().upscale(latent, "bicubic", width=32, height=32, crop="disabled")
    assert out["noise_mask"] is mask and out["batch_index"] == [7]
    assert latent["samples"].shape == (1, 4, 2, 2)


def test_upscale_by_area_halving_averages_two_by_two_blocks() -> None:
    samples = numbered(1, 2, 4, 6)
    (out,) = LatentUpscaleBy().upscale({"samples": samples}, "area", scale_by=0.5)
    expected = (samples[:, :, 0::2, 0::2] + samples[:, :, 1::2, 0::2] + samples[:, :, 0::2, 1::2]
                + samples[:, :, 1::2, 1::2]) / 4
    assert torch.allclose(out["samples"], expected)


def test_upscale_by_rounds_the_size() -> None:
    (out,) = LatentUpscaleBy().upscale({"samples": torch.zeros(2, 4, 5, 7)}, "bilinear", scale_by=1.5)
    assert out["samples"].shape == (2, 4, 8, 10)  # round(7.5) = 8 (banker's), round(10.5) = 10


def test_upscale_methods_and_defaults_match_comfyui() -> None:
    methods = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
    upscale = LatentUpscale.INPUT_TYPES()["required"]
    assert upscale["upscale_method"] == (methods,) and upscale["crop"] == (["disabled", "center"],)
    assert upscale["width"][1] | {"tooltip": None} == {"default": 512, "min": 0, "max": 16384, "step": 8,
                                                        "tooltip": None}
    by = LatentUpscaleBy.INPUT_TYPES()["required"]
    assert by["upscale_method"] == (methods,)
    assert by["scale_by"][1] == {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01}


def test_bislerp_turns_between_neighbours_and_blends_their_lengths() -> None:
    # Two orthogonal latent vectors, lengths 1 and 2, side by side; four output pixels sample the input at
    # 0, 0.25, 0.75 and 1 (half-pixel centres, clamped to the edge).
    samples = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).reshape(1, 2, 1, 2)
    out = bislerp(samples, width=4, height=1)[0, :, 0, :].T
    expected = []
    for ratio in (0.0, 0.25, 0.75, 1.0):
        angle = ratio * math.pi / 2
        length = 1.0 * (1 - ratio) + 2.0 * ratio
        expected.append([length * math.cos(angle), length * math.sin(angle)])
    assert torch.allclose(out, torch.tensor(expected), atol=1e-6)


def test_bislerp_of_parallel_vectors_is_the_linear_blend() -> None:
    samples = torch.tensor([[1.0, 3.0], [1.0, 3.0]]).reshape(1, 2, 1, 2)  # same direction, lengths differ
    out = bislerp(samples, width=4, height=1)[0, 0, 0]
    assert torch.allclose(out, torch.tensor([1.0, 1.5, 2.5, 3.0]))


def test_bislerp_samples_where_bilinear_does() -> None:
    # One channel: every pair of neighbours is parallel or opposite, so bislerp is the linear blend throughout
    # and must equal torch's bilinear resize, up and down, position for position.
    samples = torch.randn(2, 1, 5, 7, generator=torch.Generator().manual_seed(1))
    for width, height in ((13, 11), (4, 3), (7, 9)):
        expected = torch.nn.functional.interpolate(samples, size=(height, width), mode="bilinear")
        assert torch.allclose(bislerp(samples, width, height), expected, atol=1e-5)


def test_bislerp_keeps_a_constant_field_and_the_size_unchanged_when_asked() -> None:
    constant = torch.tensor([0.3, -1.2, 0.5, 2.0]).reshape(1, 4, 1, 1).expand(2, 4, 3, 5)
    assert torch.allclose(bislerp(constant, 11, 7), constant[:, :, :1, :1].expand(2, 4, 7, 11), atol=1e-6)
    samples = torch.randn(1, 4, 3, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(bislerp(samples, 5, 3), samples, atol=1e-6)
    assert bislerp(samples.half(), 10, 6).dtype == torch.float16


# -- LatentComposite -------------------------------------------------------------------------------------------


def test_composite_pastes_at_the_latent_position_and_drops_the_overhang() -> None:
    dest = torch.zeros(1, 1, 8, 8)
    source = torch.ones(1, 1, 4, 4)
    (out,) = LatentComposite().composite({"samples": dest}, {"samples": source}, x=16, y=8, feather=0)
    expected = torch.zeros(8, 8)
    expected[1:5, 2:6] = 1
    assert torch.equal(out["samples"][0, 0], expected)
    (out,) = LatentComposite().composite({"samples": dest}, {"samples": source}, x=48, y=56, feather=0)
    expected = torch.zeros(8, 8)
    expected[7:, 6:] = 1
    assert torch.equal(out["samples"][0, 0], expected)
    assert not dest.any()


def test_composite_past_the_edge_changes_nothing() -> None:
    dest = numbered(1, 1, 4, 4)
    (out,) = LatentComposite().composite({"samples": dest}, {"samples": torch.ones(1, 1, 2, 2)}, 64, 64, 0)
    assert torch.equal(out["samples"], dest)


def test_composite_feather_ramps_on_inner_edges_only() -> None:
    dest = torch.full((1, 1, 8, 8), 2.0)
    source = torch.zeros(1, 1, 4, 4)
    (inner,) = LatentComposite().composite({"samples": dest}, {"samples": source}, x=16, y=16, feather=16)
    # feather 16 px = 2 latent pixels: edge weights 1/2 then 1, products at the corners.
    ramp = torch.tensor([0.5, 1.0, 1.0, 0.5])
    weight = ramp[:, None] * ramp[None, :]
    assert torch.allclose(inner["samples"][0, 0, 2:6, 2:6], 2.0 * (1 - weight))
    assert torch.equal(inner["samples"][0, 0, :2], dest[0, 0, :2])
    (corner,) = LatentComposite().composite({"samples": dest}, {"samples": source}, x=0, y=0, feather=16)
    ramp = torch.tensor([1.0, 1.0, 1.0, 0.5])  # the top and left edges lie on the border: no fade there
    weight = ramp[:, None] * ramp[None, :]
    assert torch.allclose(corner["samples"][0, 0, :4, :4], 2.0 * (1 - weight))


def test_composite_feather_steps_are_multiples_of_one_over_feather() -> None:
    dest = torch.zeros(1, 1, 12, 12)
    (out,) = LatentComposite().composite({"samples": dest}, {"samples": torch.ones(1, 1, 8, 8)}, 16, 16, 24)
    row = out["samples"][0, 0, 5, 2:10]
    assert torch.allclose(row, torch.tensor([1 / 3, 2 / 3, 1, 1, 1, 1, 2 / 3, 1 / 3]))


def test_composite_single_source_goes_into_every_item_and_keeps_the_destination_keys() -> None:
    dest = {"samples": torch.zeros(3, 4, 4, 4), "batch_index": [4, 5, 6], "noise_mask": torch.ones(1, 1, 4, 4)}
    (out,) = LatentComposite().composite(dest, {"samples": torch.ones(1, 4, 2, 2)}, 0, 0, 0)
    assert out["samples"][:, :, :2, :2].eq(1).all() and out["samples"][:, :, 2:].eq(0).all()
    assert out["batch_index"] == [4, 5, 6] and out["noise_mask"] is dest["noise_mask"]


def test_composite_rejects_mismatched_batches_and_channels() -> None:
    with pytest.raises(ValueError, match="samples_from has a batch of 2 but samples_to has 3"):
        LatentComposite().composite({"samples": torch.zeros(3, 4, 4, 4)}, {"samples": torch.ones(2, 4, 2, 2)}, 0, 0, 0)
    with pytest.raises(ValueError, match="samples_from has 16 latent channels but samples_to has 4"):
        LatentComposite().composite({"samples": torch.zeros(1, 4, 4, 4)}, {"samples": torch.ones(1, 16, 2, 2)}, 0, 0, 0)


# -- SetLatentNoiseMask ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "expected"), [((6, 10), (1, 1, 6, 10)), ((2, 6, 10), (2, 1, 6, 10))])
def test_noise_mask_takes_the_sampler_layout(shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    latent = {"samples": torch.zeros(2, 4, 3, 5)}
    mask = numbered(*shape)
    (out,) = SetLatentNoiseMask().set_mask(latent, mask)
    assert out["noise_mask"].shape == expected
    assert torch.equal(out["noise_mask"].flatten(), mask.flatten())
    assert "noise_mask" not in latent


# -- RepeatLatentBatch -----------------------------------------------------------------------------------------


def test_repeat_copies_the_batch_masks_and_seed_offsets() -> None:
    samples, masks = numbered(2, 1, 2, 2), numbered(2, 1, 4, 4)
    latent = {"samples": samples, "noise_mask": masks, "batch_index": [3, 5]}
    (out,) = RepeatLatentBatch().repeat(latent, amount=3)
    assert torch.equal(out["samples"], samples[[0, 1, 0, 1, 0, 1]])
    assert torch.equal(out["noise_mask"], masks[[0, 1, 0, 1, 0, 1]])
    # Offsets 3..5 span 3 seeds, so each copy moves on by 3.
    assert out["batch_index"] == [3, 5, 6, 8, 9, 11]
    assert latent["batch_index"] == [3, 5] and latent["samples"].shape[0] == 2


def test_repeat_pads_a_short_mask_batch_to_the_items_before_repeating() -> None:
    masks = numbered(3, 1, 2, 2)
    (out,) = RepeatLatentBatch().repeat({"samples": torch.zeros(4, 4, 1, 1), "noise_mask": masks}, amount=2)
    assert torch.equal(out["noise_mask"], masks[[0, 1, 2, 0, 0, 1, 2, 0]])


def test_repeat_keeps_a_single_mask_and_adds_no_batch_index() -> None:
    mask = torch.ones(1, 1, 8, 8)
    (out,) = RepeatLatentBatch().repeat({"samples": torch.zeros(1, 4, 1, 1), "noise_mask": mask}, amount=4)
    assert out["samples"].shape[0] == 4 and out["noise_mask"] is mask and "batch_index" not in out


# -- LatentFromBatch -------------------------------------------------------------------------------------------


def test_from_batch_slices_and_records_the_seed_offsets() -> None:
    samples = numbered(4, 1, 2, 2)
    (out,) = LatentFromBatch().frombatch({"samples": samples}, batch_index=1, length=2)
    assert torch.equal(out["samples"], samples[1:3]) and out["batch_index"] == [1, 2]
    out["samples"].add_(100)  # a copy: the (cached) input batch is not a view's base
    assert torch.equal(samples, numbered(4, 1, 2, 2))


@pytest.mark.parametrize(("start", "length", "items"), [(10, 1, [3]), (9, 5, [3]), (2, 64, [2, 3]), (0, 4, [0, 1, 2, 3])])
def test_from_batch_clamps_past_the_end_as_comfyui(start: int, length: int, items: list[int]) -> None:
    samples = numbered(4, 1, 1, 1)
    (out,) = LatentFromBatch().frombatch({"samples": samples}, batch_index=start, length=length)
    assert torch.equal(out["samples"], samples[items]) and out["batch_index"] == items


def test_from_batch_slices_existing_offsets_and_cycled_masks() -> None:
    masks = numbered(2, 1, 3, 3)
    latent = {"samples": numbered(4, 4, 1, 1), "noise_mask": masks, "batch_index": [10, 11, 12, 13]}
    (out,) = LatentFromBatch().frombatch(latent, batch_index=1, length=2)
    assert out["batch_index"] == [11, 12]
    assert torch.equal(out["noise_mask"], masks[[1, 0]])  # masks cover the batch in turn: m0 m1 m0 m1
    single = torch.ones(1, 1, 3, 3)
    (out,) = LatentFromBatch().frombatch({"samples": numbered(4, 4, 1, 1), "noise_mask": single}, 2, 1)
    assert torch.equal(out["noise_mask"], single)


def test_batch_node_limits_match_comfyui() -> None:
    repeat = RepeatLatentBatch.INPUT_TYPES()["required"]
    assert repeat["amount"][1] == {"default": 1, "min": 1, "max": 64}
    from_batch = LatentFromBatch.INPUT_TYPES()["required"]
    assert from_batch["batch_index"][1] == {"default": 0, "min": 0, "max": 63}
    assert from_batch["length"][1] == {"default": 1, "min": 1, "max": 64}


# -- through the executor --------------------------------------------------------------------------------------


class Capture:
    """A test output node that hands its input back as UI data."""

    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("LATENT",)}}

    def capture(self, value: Any) -> dict[str, Any]:
        return {"ui": {"value": [value]}}


def executor() -> Executor:
    registry = NodeRegistry.from_classes(NODES | {"Capture": Capture})
    registry.types = {t.name: t for t in register_types()}
    return Executor(registry)


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def test_a_latent_graph_runs_through_the_executor() -> None:
    prompt = {
        "1": node("EmptyLatentImage", width=64, height=32, batch_size=2),
        "2": node("LatentUpscaleBy", samples=["1", 0], upscale_method="bislerp", scale_by=2.0),
        "3": node("RepeatLatentBatch", samples=["2", 0], amount=3),
        "4": node("LatentFromBatch", samples=["3", 0], batch_index=3, length=64),
        "5": node("EmptyLatentImage", width=16, height=16, batch_size=1),
        "6": node("LatentComposite", samples_to=["4", 0], samples_from=["5", 0], x=8, y=0, feather=0),
        "7": node("Capture", value=["6", 0]),
    }
    result = executor().run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    (latent,) = result.outputs["7"]["value"]
    assert latent["samples"].shape == (3, 4, 8, 16)
    assert latent["batch_index"] == [3, 4, 5]


@pytest.mark.parametrize(("inputs", "kind"), [
    ({"width": 8, "height": 64, "batch_size": 1}, "value_smaller_than_min"),
    ({"width": 64, "height": 64, "batch_size": 5000}, "value_bigger_than_max"),
])
def test_the_validator_enforces_the_declared_ranges(inputs: dict[str, Any], kind: str) -> None:
    result = executor().run({"1": node("EmptyLatentImage", **inputs), "2": node("Capture", value=["1", 0])})
    assert not result.ok
    assert [e["type"] for e in result.validation.node_errors["1"]["errors"]] == [kind]


def test_the_validator_rejects_an_image_resize_method_for_latents() -> None:
    prompt = {"1": node("EmptyLatentImage", width=64, height=64, batch_size=1),
              "2": node("LatentUpscale", samples=["1", 0], upscale_method="lanczos", width=128, height=128,
                        crop="disabled"),
              "3": node("Capture", value=["2", 0])}
    result = executor().run(prompt)
    assert [e["type"] for e in result.validation.node_errors["2"]["errors"]] == ["value_not_in_list"]
