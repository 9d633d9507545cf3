"""The SD plugin's latent transform, arithmetic, batch, operation and empty-latent nodes against ComfyUI's definitions."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hearth_sd import nodes_latent_empty, nodes_latent_ops, nodes_latent_transform
from hearth_sd.nodes_latent_empty import (
    EmptyAceStep15LatentAudio,
    EmptyAceStepLatentAudio,
    EmptyChromaRadianceLatentImage,
    EmptyFlux2LatentImage,
    EmptyHiDreamO1LatentImage,
    EmptyHunyuanVideo15Latent,
    EmptyLTXVLatentVideo,
    EmptyQwenImageLayeredLatentImage,
    EmptySD3LatentImage,
    EmptyYuE2LatentAudio,
)
from hearth_sd.nodes_latent_ops import (
    LatentAdd,
    LatentBatch,
    LatentBatchSeedBehavior,
    LatentConcat,
    LatentCut,
    LatentCutToBatch,
    LatentInterpolate,
    LatentMultiply,
    LatentSubtract,
)
from hearth_sd.nodes_latent_transform import (
    LatentBlend,
    LatentCompositeMasked,
    LatentCrop,
    LatentFlip,
    LatentRotate,
)

from hearth.core.executor import Executor
from hearth.core.node_registry import NodeRegistry


def numbered(*shape: int) -> torch.Tensor:
    return torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)


def latent(samples: torch.Tensor, **extra: Any) -> dict[str, Any]:
    return {"samples": samples, **extra}


# -- transforms ------------------------------------------------------------------------------------------------


def test_crop_takes_the_region_in_latent_pixels_and_keeps_the_other_keys() -> None:
    mask = torch.ones(1, 1, 16, 16)
    source = latent(numbered(1, 4, 12, 16), noise_mask=mask, batch_index=[5])
    (out,) = LatentCrop().crop(source, width=32, height=16, x=8, y=16)
    assert torch.equal(out["samples"], source["samples"][:, :, 2:4, 1:5])
    assert out["noise_mask"] is mask and out["batch_index"] == [5]
    # A corner past width - 64 pixels is pulled back so 8 latent pixels remain (ComfyUI's minimum).
    (far,) = LatentCrop().crop(source, width=512, height=512, x=4000, y=4000)
    assert torch.equal(far["samples"], source["samples"][:, :, 4:12, 8:16])


def test_crop_inputs_match_comfyui() -> None:
    required = LatentCrop.INPUT_TYPES()["required"]
    assert {k: v[1]["min"] for k, v in required.items() if k != "samples"} == {"width": 64, "height": 64, "x": 0, "y": 0}
    assert LatentCrop.CATEGORY == LatentFlip.CATEGORY == LatentRotate.CATEGORY == "latent/transform"


def test_flip_x_axis_reverses_rows_and_y_axis_columns() -> None:
    grid = numbered(1, 1, 2, 3)  # [[0, 1, 2], [3, 4, 5]]
    (vertical,) = LatentFlip().flip(latent(grid), "x-axis: vertically")
    (horizontal,) = LatentFlip().flip(latent(grid), "y-axis: horizontally")
    assert vertical["samples"][0, 0].tolist() == [[3, 4, 5], [0, 1, 2]]
    assert horizontal["samples"][0, 0].tolist() == [[2, 1, 0], [5, 4, 3]]
    with pytest.raises(ValueError, match="LatentFlip: flip_method must be one of"):
        LatentFlip().flip(latent(grid), "diagonal")


def test_rotate_turns_clockwise() -> None:
    grid = numbered(1, 1, 2, 3)
    turned = {r: LatentRotate().rotate(latent(grid), r)[0]["samples"][0, 0].tolist() for r in
              ("none", "90 degrees", "180 degrees", "270 degrees")}
    assert turned["none"] == [[0, 1, 2], [3, 4, 5]]
    assert turned["90 degrees"] == [[3, 0], [4, 1], [5, 2]]
    assert turned["180 degrees"] == [[5, 4, 3], [2, 1, 0]]
    assert turned["270 degrees"] == [[2, 5], [1, 4], [0, 3]]


def test_blend_weights_samples1_by_the_factor() -> None:
    a, b = torch.full((2, 4, 4, 4), 2.0), torch.full((2, 4, 4, 4), 10.0)
    (out,) = LatentBlend().blend(latent(a, batch_index=[0, 1]), latent(b), 0.25)
    torch.testing.assert_close(out["samples"], torch.full_like(a, 2.0 * 0.25 + 10.0 * 0.75))
    assert out["batch_index"] == [0, 1]
    # A differently sized samples2 is resized to samples1 (bicubic, centre crop) first; a constant stays constant.
    (resized,) = LatentBlend().blend(latent(a), latent(torch.full((1, 4, 8, 6), 10.0)), 0.5)
    torch.testing.assert_close(resized["samples"], torch.full_like(a, 6.0))


def test_composite_masked_pastes_with_the_mask_at_latent_positions() -> None:
    dest = latent(torch.zeros(2, 1, 4, 6), batch_index=[7, 8])
    src = latent(torch.ones(1, 1, 2, 4))
    mask = torch.tensor([[1.0, 0.5, 0.5, 1.0], [0.0, 1.0, 1.0, 0.0]])  # at the source's size: no resampling
    (out,) = LatentCompositeMasked().composite(dest, src, x=24, y=8, resize_source=False, mask=mask)
    # x = 24 px -> column 3; the source's last column falls off the right edge and is dropped.
    want = torch.zeros(4, 6)
    want[1, 3:6] = torch.tensor([1.0, 0.5, 0.5])
    want[2, 3:6] = torch.tensor([0.0, 1.0, 1.0])
    assert torch.equal(out["samples"][0, 0], want) and torch.equal(out["samples"][1, 0], want)
    assert out["batch_index"] == [7, 8] and not dest["samples"].any()  # the input was not written to


def test_composite_masked_without_mask_and_with_resize_source() -> None:
    dest = latent(torch.zeros(1, 4, 4, 4))
    (whole,) = LatentCompositeMasked().composite(dest, latent(torch.full((1, 4, 2, 2), 3.0)), 0, 0, True)
    assert torch.equal(whole["samples"], torch.full((1, 4, 4, 4), 3.0))
    with pytest.raises(ValueError, match="source has 16 channels and destination 4"):
        LatentCompositeMasked().composite(dest, latent(torch.zeros(1, 16, 2, 2)), 0, 0, False)


# -- arithmetic --------------------------------------------------------------------------------------------------


def test_add_and_subtract_resize_and_repeat_samples2_to_samples1() -> None:
    first = latent(torch.full((2, 4, 4, 4), 5.0), noise_mask=torch.ones(1, 1, 4, 4))
    second = latent(torch.full((1, 4, 2, 2), 2.0))  # half the size, batch of one: bilinear-resized, repeated
    (added,) = LatentAdd().op(first, second)
    (subtracted,) = LatentSubtract().op(first, second)
    assert torch.equal(added["samples"], torch.full((2, 4, 4, 4), 7.0))
    assert torch.equal(subtracted["samples"], torch.full((2, 4, 4, 4), 3.0))
    assert "noise_mask" in added
    with pytest.raises(ValueError, match="LatentAdd: samples2 is \\[1, 16, 2, 2\\].*same channels"):
        LatentAdd().op(first, latent(torch.zeros(1, 16, 2, 2)))


def test_multiply_scales_every_value() -> None:
    (out,) = LatentMultiply().op(latent(numbered(1, 4, 2, 2)), -1.5)
    assert torch.equal(out["samples"], numbered(1, 4, 2, 2) * -1.5)


def test_interpolate_slerps_directions_and_lerps_lengths() -> None:
    a = torch.zeros(1, 4, 1, 1)
    a[0, 0] = 2.0  # length 2 along channel 0
    b = torch.zeros(1, 4, 1, 1)
    b[0, 1] = 4.0  # length 4 along channel 1
    (mid,) = LatentInterpolate().op(latent(a), latent(b), 0.5)
    # Direction (1, 1)/sqrt(2), length 0.5 * 2 + 0.5 * 4 = 3.
    torch.testing.assert_close(mid["samples"][0, :, 0, 0], torch.tensor([3, 3, 0, 0]) / math.sqrt(2))
    (first,) = LatentInterpolate().op(latent(a), latent(b), 1.0)
    torch.testing.assert_close(first["samples"], a)


def test_interpolate_normalises_each_batch_item_alone() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 4, 2, 2, generator=gen), torch.randn(3, 4, 2, 2, generator=gen)
    (batch,) = LatentInterpolate().op(latent(a), latent(b), 0.3)
    for i in range(3):
        (one,) = LatentInterpolate().op(latent(a[i:i + 1]), latent(b[i:i + 1]), 0.3)
        torch.testing.assert_close(batch["samples"][i:i + 1], one["samples"])


def test_batch_concatenates_and_keeps_seed_offsets() -> None:
    first = latent(torch.zeros(2, 4, 4, 4), batch_index=[4, 5])
    (out,) = LatentBatch().batch(first, latent(torch.ones(3, 4, 8, 8)))
    assert out["samples"].shape == (5, 4, 4, 4) and out["batch_index"] == [4, 5, 0, 1, 2]
    assert torch.equal(out["samples"][2:], torch.ones(3, 4, 4, 4))


def test_seed_behavior_fixed_repeats_the_first_offset_and_random_drops_them() -> None:
    (fixed,) = LatentBatchSeedBehavior().op(latent(torch.zeros(3, 4, 2, 2), batch_index=[6, 7, 8]), "fixed")
    assert fixed["batch_index"] == [6, 6, 6]
    (plain,) = LatentBatchSeedBehavior().op(latent(torch.zeros(2, 4, 2, 2)), "fixed")
    assert plain["batch_index"] == [0, 0]
    (random,) = LatentBatchSeedBehavior().op(latent(torch.zeros(3, 4, 2, 2), batch_index=[6, 7, 8]), "random")
    assert "batch_index" not in random


def test_concat_joins_along_the_named_axis_in_either_order() -> None:
    a, b = latent(torch.zeros(2, 4, 2, 3)), latent(torch.ones(1, 4, 2, 1))
    (right,) = LatentConcat().op(a, b, "x")
    (left,) = LatentConcat().op(a, b, "-x")
    assert right["samples"].shape == (2, 4, 2, 4) and right["samples"][:, :, :, 3].eq(1).all()
    assert left["samples"][:, :, :, 0].eq(1).all() and not left["samples"][:, :, :, 1:].any()
    video = LatentConcat().op(latent(torch.zeros(1, 16, 3, 2, 2)), latent(torch.ones(1, 16, 2, 2, 2)), "t")[0]
    assert video["samples"].shape == (1, 16, 5, 2, 2)
    with pytest.raises(ValueError, match="all sizes but the one along y must match"):
        LatentConcat().op(a, b, "y")
    with pytest.raises(ValueError, match="dim 't' needs a video latent"):
        LatentConcat().op(a, b, "t")


@pytest.mark.parametrize(("index", "amount", "columns"), [
    (2, 3, [2, 3, 4]), (4, 10, [4, 5]), (99, 3, [5]), (-2, 5, [4, 5]), (-99, 2, [0, 1])])
def test_cut_clamps_like_comfyui(index: int, amount: int, columns: list[int]) -> None:
    (out,) = LatentCut().op(latent(numbered(1, 1, 1, 6)), "x", index, amount)
    assert out["samples"][0, 0, 0].tolist() == columns


def test_cut_to_batch_stacks_slices_and_drops_the_remainder() -> None:
    (out,) = LatentCutToBatch().op(latent(numbered(2, 1, 1, 8)), "x", 3)
    assert out["samples"][:, 0, 0].tolist() == [[0, 1, 2], [3, 4, 5], [8, 9, 10], [11, 12, 13]]
    video = numbered(1, 2, 4, 1, 1)
    (frames,) = LatentCutToBatch().op(latent(video), "t", 2)
    assert frames["samples"].shape == (2, 2, 2, 1, 1)
    assert torch.equal(frames["samples"][1], video[0, :, 2:4])
    image = latent(numbered(1, 4, 2, 2))
    assert LatentCutToBatch().op(image, "t", 2)[0] is image  # no frames: unchanged, as in ComfyUI


# -- empty latents -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("node", "args", "shape"), [
    (EmptySD3LatentImage, (1024, 512, 2), (2, 16, 64, 128)),
    (EmptyFlux2LatentImage, (1024, 512, 1), (1, 128, 32, 64)),
    (EmptyChromaRadianceLatentImage, (48, 32, 3), (3, 3, 32, 48)),
    (EmptyLTXVLatentVideo, (768, 512, 97, 1), (1, 128, 13, 16, 24)),
    (EmptyQwenImageLayeredLatentImage, (640, 320, 3, 2), (2, 16, 4, 40, 80)),
    (EmptyHiDreamO1LatentImage, (96, 64, 2), (2, 3, 64, 96)),
])
def test_empty_latents_are_zeros_of_the_family_shape(node: type, args: tuple, shape: tuple) -> None:
    (out,) = node().generate(*args)
    assert set(out) == {"samples"} and out["samples"].shape == shape and not out["samples"].any()


def test_empty_latents_that_carry_more_than_samples() -> None:
    (video,) = EmptyHunyuanVideo15Latent().generate(1280, 720, 121, 1)
    assert video["samples"].shape == (1, 32, 31, 45, 80) and video["downscale_ratio_spacial"] == 16
    (ace,) = EmptyAceStepLatentAudio().generate(120.0, 2)
    assert ace["samples"].shape == (2, 8, 16, 1291) and ace["type"] == "audio"  # int(120 * 44100 / 4096)
    (ace15,) = EmptyAceStep15LatentAudio().generate(30.5, 1)
    assert ace15["samples"].shape == (1, 64, 762) and ace15["type"] == "audio"  # round(30.5 * 25) = 762 (even)
    assert not ace15["samples"].any()
    assert nodes_latent_empty.NODES["EmptyAceStep1.5LatentAudio"] is EmptyAceStep15LatentAudio
    (yue,) = EmptyYuE2LatentAudio().generate(10.02, 1)
    assert yue["samples"].shape == (1, 64, 250) and yue["downscale_ratio_temporal"] == 1920  # round(10.02 * 25) = 250
    assert EmptyYuE2LatentAudio().generate(0.01, 1)[0]["samples"].shape == (1, 64, 1)  # at least one frame


def test_empty_latent_inputs_match_comfyui() -> None:
    sd3 = EmptySD3LatentImage.INPUT_TYPES()["required"]
    assert {k: (v[1]["default"], v[1]["min"], v[1].get("step")) for k, v in sd3.items()} == {
        "width": (1024, 16, 16), "height": (1024, 16, 16), "batch_size": (1, 1, None)}
    ltxv = EmptyLTXVLatentVideo.INPUT_TYPES()["required"]
    assert (ltxv["width"][1]["default"], ltxv["height"][1]["step"], ltxv["length"][1]["default"]) == (768, 32, 97)
    assert EmptySD3LatentImage.CATEGORY == "latent/sd3" and EmptyFlux2LatentImage.DISPLAY_NAME == "Empty Flux 2 Latent"


# -- through the executor ------------------------------------------------------------------------------------------


class Capture:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("LATENT",)}}

    def capture(self, value: Any) -> dict[str, Any]:
        return {"ui": {"value": [value]}}


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def test_a_latent_ops_graph_runs_through_the_executor() -> None:
    from hearth_sd.nodes_latent import EmptyLatentImage

    classes = (nodes_latent_ops.NODES | nodes_latent_transform.NODES | nodes_latent_empty.NODES
               | {"EmptyLatentImage": EmptyLatentImage, "Capture": Capture})
    prompt = {
        "1": node("EmptyLatentImage", width=64, height=64, batch_size=2),
        "2": node("LatentMultiply", samples=["1", 0], multiplier=2.0),
        "3": node("EmptySD3LatentImage", width=32, height=32, batch_size=1),
        "4": node("LatentBatch", samples1=["2", 0], samples2=["1", 0]),
        "5": node("LatentRotate", samples=["4", 0], rotation="90 degrees"),
        "6": node("LatentCrop", samples=["5", 0], width=64, height=64, x=0, y=0),
        "7": node("LatentInterpolate", samples1=["6", 0], samples2=["1", 0], ratio=0.5),
        "9": node("LatentCompositeMasked", destination=["7", 0], source=["1", 0], x=8, y=8, resize_source=False),
        "10": node("Capture", value=["9", 0]),
        "11": node("Capture", value=["3", 0]),
    }
    result = Executor(NodeRegistry.from_classes(classes)).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    (out,) = result.outputs["10"]["value"]
    assert out["samples"].shape == (4, 4, 8, 8) and out["batch_index"] == [0, 1, 0, 1]
    assert result.outputs["11"]["value"][0]["samples"].shape == (1, 16, 4, 4)
    bad = Executor(NodeRegistry.from_classes(classes)).run(
        {"1": node("LatentCut", samples=["2", 0], dim="z", index=0, amount=1), "2": node(
            "EmptyLatentImage", width=64, height=64, batch_size=1), "3": node("Capture", value=["1", 0])})
    assert not bad.ok and "dim" in str(bad.validation.node_errors)
