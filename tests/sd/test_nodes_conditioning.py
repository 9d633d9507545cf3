"""The SD plugin's CONDITIONING nodes: ComfyUI's semantics on small tensors, options never shared, executor runs."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
import torch
from hearth_sd.nodes_conditioning import NODES, ConditioningAverage, ConditioningCombine, ConditioningConcat
from hearth_sd.nodes_conditioning_advanced import ConditioningSetTimestepRange, ConditioningZeroOut
from hearth_sd.nodes_conditioning_area import (
    ConditioningSetArea,
    ConditioningSetAreaPercentage,
    ConditioningSetAreaStrength,
    ConditioningSetMask,
)

from hearth.core.executor import Executor
from hearth.core.executor.essential import register_types
from hearth.core.node_registry import NodeRegistry

COMFYUI_CONDITIONING_NODES = {
    "ConditioningCombine", "ConditioningAverage", "ConditioningConcat", "ConditioningSetArea",
    "ConditioningSetAreaPercentage", "ConditioningSetAreaStrength", "ConditioningSetMask", "ConditioningZeroOut",
    "ConditioningSetTimestepRange"}


def embedding(tokens: int, value: float, batch: int = 1, dim: int = 2) -> torch.Tensor:
    return torch.full((batch, tokens, dim), value)


def entry(cond: torch.Tensor, **options: Any) -> list[Any]:
    return [cond, options]


def snapshot(conditioning: list[list[Any]]) -> list[tuple[torch.Tensor, dict[str, Any]]]:
    """A deep copy to compare against after a node ran: the node must not have changed its input."""
    return [(cond.clone(), copy.deepcopy(options)) for cond, options in conditioning]


def assert_unchanged(conditioning: list[list[Any]], before: list[tuple[torch.Tensor, dict[str, Any]]]) -> None:
    assert len(conditioning) == len(before)
    for (cond, options), (cond_before, options_before) in zip(conditioning, before, strict=True):
        assert torch.equal(cond, cond_before)
        assert options.keys() == options_before.keys()
        for key, value in options.items():
            same = torch.equal(value, options_before[key]) if torch.is_tensor(value) else value == options_before[key]
            assert same, key


def test_nodes_exported_under_comfyui_names() -> None:
    assert set(NODES) == COMFYUI_CONDITIONING_NODES


# -- Combine / Average / Concat --------------------------------------------------------------------------------


def test_combine_keeps_every_entry_in_order() -> None:
    first, second = [entry(embedding(3, 1.0))], [entry(embedding(3, 2.0)), entry(embedding(3, 3.0))]
    (out,) = ConditioningCombine().combine(first, second)
    assert [c[0][0, 0, 0].item() for c in out] == [1.0, 2.0, 3.0]
    assert len(first) == 1 and len(second) == 2


def test_average_blends_token_by_token_and_pads_a_shorter_source_with_zeros() -> None:
    to = [entry(torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]), pooled_output=torch.tensor([[4.0, 8.0]]))]
    source = [entry(torch.tensor([[[10.0, 20.0], [30.0, 40.0]]]), pooled_output=torch.tensor([[0.0, 4.0]]))]
    before = snapshot(to) + snapshot(source)
    (out,) = ConditioningAverage().addWeighted(to, source, conditioning_to_strength=0.25)
    expected = 0.25 * torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]) + 0.75 * torch.tensor(
        [[[10.0, 20.0], [30.0, 40.0], [0.0, 0.0]]])
    assert torch.allclose(out[0][0], expected)
    assert torch.allclose(out[0][1]["pooled_output"], torch.tensor([[1.0, 5.0]]))
    assert_unchanged(to + source, before)


def test_average_truncates_a_longer_source_and_pairs_batches() -> None:
    to = [entry(embedding(1, 0.0, batch=2))]
    source = [entry(torch.tensor([[[4.0, 4.0], [9.0, 9.0]], [[8.0, 8.0], [9.0, 9.0]]]))]
    (out,) = ConditioningAverage().addWeighted(to, source, conditioning_to_strength=0.5)
    assert torch.equal(out[0][0], torch.tensor([[[2.0, 2.0]], [[4.0, 4.0]]]))


def test_average_pooled_rules_follow_comfyui() -> None:
    pooled = torch.tensor([[2.0, 2.0]])
    # An entry without a pooled output takes the source's.
    (out,) = ConditioningAverage().addWeighted([entry(embedding(1, 0.0))], [entry(embedding(1, 1.0),
                                                                                 pooled_output=pooled)], 0.7)
    assert torch.allclose(out[0][1]["pooled_output"], pooled)
    (out,) = ConditioningAverage().addWeighted([entry(embedding(1, 0.0), pooled_output=None)],
                                               [entry(embedding(1, 1.0), pooled_output=pooled)], 0.7)
    assert torch.allclose(out[0][1]["pooled_output"], pooled)
    # A source without one leaves the entry's own as it was.
    (out,) = ConditioningAverage().addWeighted([entry(embedding(1, 0.0), pooled_output=pooled)],
                                               [entry(embedding(1, 1.0))], 0.7)
    assert out[0][1]["pooled_output"] is pooled


def test_average_uses_the_first_source_entry_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    source = [entry(embedding(1, 1.0)), entry(embedding(1, 100.0))]
    with caplog.at_level(logging.WARNING):
        (out,) = ConditioningAverage().addWeighted([entry(embedding(1, 0.0)), entry(embedding(1, 2.0))], source, 0.5)
    assert [c[0][0, 0, 0].item() for c in out] == [0.5, 1.5]
    assert "conditioning_from has 2 entries; only the first is used" in caplog.text


def test_average_names_the_input_at_fault() -> None:
    with pytest.raises(ValueError, match="conditioning_from is empty"):
        ConditioningAverage().addWeighted([entry(embedding(1, 0.0))], [], 0.5)
    with pytest.raises(ValueError, match="conditioning_to has embeddings of 2 values and conditioning_from 3"):
        ConditioningAverage().addWeighted([entry(embedding(1, 0.0))], [entry(embedding(1, 0.0, dim=3))], 0.5)
    with pytest.raises(ValueError, match="conditioning_to has a batch of 2 and conditioning_from 3"):
        ConditioningAverage().addWeighted([entry(embedding(1, 0.0, batch=2))], [entry(embedding(1, 0.0, batch=3))],
                                          0.5)


def test_concat_appends_the_source_tokens_and_keeps_the_target_options() -> None:
    pooled = torch.ones(1, 2)
    to = [entry(embedding(2, 1.0), pooled_output=pooled, strength=0.5)]
    (out,) = ConditioningConcat().concat(to, [entry(embedding(3, 7.0), pooled_output=torch.zeros(1, 2))])
    assert torch.equal(out[0][0], torch.cat([embedding(2, 1.0), embedding(3, 7.0)], dim=1))
    assert out[0][1] == {"pooled_output": pooled, "strength": 0.5} and out[0][1] is not to[0][1]


def test_concat_rejects_mismatched_shapes_naming_both_inputs() -> None:
    with pytest.raises(ValueError, match=r"conditioning_to is \[1, 2, 2\] and conditioning_from is \[1, 3, 4\]"):
        ConditioningConcat().concat([entry(embedding(2, 1.0))], [entry(embedding(3, 7.0, dim=4))])


# -- area, strength, mask --------------------------------------------------------------------------------------


def test_set_area_stores_latent_pixels_rounded_down() -> None:
    conditioning = [entry(embedding(1, 1.0), pooled_output=torch.ones(1, 2))]
    before = snapshot(conditioning)
    (out,) = ConditioningSetArea().append(conditioning, width=100, height=72, x=20, y=9, strength=1.5)
    assert out[0][1]["area"] == (9, 12, 1, 2)  # (h, w, y, x) = pixels // 8
    assert out[0][1]["strength"] == 1.5 and out[0][1]["set_area_to_bounds"] is False
    assert out[0][0] is conditioning[0][0] and out[0][1]["pooled_output"] is conditioning[0][1]["pooled_output"]
    assert_unchanged(conditioning, before)


def test_set_area_percentage_stores_fractions_height_first() -> None:
    (out,) = ConditioningSetAreaPercentage().append([entry(embedding(1, 1.0))], width=0.5, height=0.25, x=0.1, y=0.2,
                                                    strength=2.0)
    assert out[0][1] == {"area": ("percentage", 0.25, 0.5, 0.2, 0.1), "strength": 2.0, "set_area_to_bounds": False}


def test_set_area_strength_changes_only_the_strength() -> None:
    conditioning = [entry(embedding(1, 1.0), area=(1, 2, 3, 4), strength=1.0)]
    (out,) = ConditioningSetAreaStrength().append(conditioning, strength=0.3)
    assert out[0][1] == {"area": (1, 2, 3, 4), "strength": 0.3} and conditioning[0][1]["strength"] == 1.0


@pytest.mark.parametrize(("set_cond_area", "bounds"), [("default", False), ("mask bounds", True)])
def test_set_mask_records_the_mask_as_a_batch(set_cond_area: str, bounds: bool) -> None:
    mask = torch.rand(5, 7, generator=torch.Generator().manual_seed(0))
    conditioning = [entry(embedding(1, 1.0)), entry(embedding(1, 2.0))]
    before = snapshot(conditioning)
    (out,) = ConditioningSetMask().append(conditioning, mask, set_cond_area=set_cond_area, strength=0.8)
    for (cond, options), (original, _) in zip(out, conditioning, strict=True):
        assert cond is original
        assert options["mask"].shape == (1, 5, 7) and torch.equal(options["mask"][0], mask)
        assert options["set_area_to_bounds"] is bounds and options["mask_strength"] == 0.8
    assert_unchanged(conditioning, before)


def test_set_mask_rejects_a_mask_that_is_not_one() -> None:
    with pytest.raises(ValueError, match=r"mask must be \[H, W\] or \[B, H, W\], got shape \[4\]"):
        ConditioningSetMask().append([entry(embedding(1, 1.0))], torch.ones(4), "default", 1.0)


def test_area_inputs_match_comfyui() -> None:
    area = ConditioningSetArea.INPUT_TYPES()["required"]
    assert area["width"][1] == {"default": 64, "min": 64, "max": 16384, "step": 8}
    assert area["x"][1] == {"default": 0, "min": 0, "max": 16384, "step": 8}
    assert area["strength"][1] == {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}
    assert ConditioningSetMask.INPUT_TYPES()["required"]["set_cond_area"] == (["default", "mask bounds"],)
    assert list(ConditioningSetMask.INPUT_TYPES()["required"]) == ["conditioning", "mask", "strength", "set_cond_area"]
    timing = ConditioningSetTimestepRange.INPUT_TYPES()["required"]
    assert timing["start"][1] == {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}


# -- zero out, timestep range ----------------------------------------------------------------------------------


def test_zero_out_zeros_the_embedding_and_the_pooled_output() -> None:
    conditioning = [entry(embedding(2, 3.0), pooled_output=torch.ones(1, 2), area=(1, 1, 0, 0)),
                    entry(embedding(2, 3.0), pooled_output=None)]
    before = snapshot(conditioning)
    (out,) = ConditioningZeroOut().zero_out(conditioning)
    assert not out[0][0].any() and not out[0][1]["pooled_output"].any() and out[0][1]["area"] == (1, 1, 0, 0)
    assert out[1][1]["pooled_output"] is None
    assert_unchanged(conditioning, before)


def test_zero_out_also_zeros_lyrics_conditioning_as_comfyui() -> None:
    lyrics = torch.ones(1, 5, 2)
    (out,) = ConditioningZeroOut().zero_out([entry(embedding(1, 1.0), conditioning_lyrics=lyrics)])
    assert out[0][1]["conditioning_lyrics"].shape == (1, 5, 2) and not out[0][1]["conditioning_lyrics"].any()
    assert lyrics.eq(1).all()


def test_timestep_range_is_stored_as_fractions_from_the_first_step() -> None:
    conditioning = [entry(embedding(1, 1.0), strength=0.5)]
    (out,) = ConditioningSetTimestepRange().set_range(conditioning, start=0.2, end=0.7)
    assert out[0][1] == {"strength": 0.5, "start_percent": 0.2, "end_percent": 0.7}
    assert conditioning[0][1] == {"strength": 0.5}


# -- through the executor --------------------------------------------------------------------------------------


class TextConditioning:
    """Stands in for CLIPTextEncode: one entry with a pooled output."""

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("FLOAT", {"default": 1.0})}}

    def encode(self, value: float) -> tuple[list[list[Any]]]:
        return ([[embedding(3, value), {"pooled_output": torch.full((1, 2), value)}]],)


class Capture:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("CONDITIONING",)}}

    def capture(self, value: Any) -> dict[str, Any]:
        return {"ui": {"value": [value]}}


def executor() -> Executor:
    registry = NodeRegistry.from_classes(NODES | {"TextConditioning": TextConditioning, "Capture": Capture})
    registry.types = {t.name: t for t in register_types()}
    return Executor(registry)


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def test_one_cached_conditioning_feeding_several_nodes_is_never_changed() -> None:
    prompt = {
        "1": node("TextConditioning", value=1.0),
        "2": node("ConditioningSetArea", conditioning=["1", 0], width=64, height=128, x=0, y=64, strength=2.0),
        "3": node("ConditioningSetTimestepRange", conditioning=["1", 0], start=0.0, end=0.5),
        "4": node("ConditioningZeroOut", conditioning=["1", 0]),
        "5": node("ConditioningCombine", conditioning_1=["2", 0], conditioning_2=["3", 0]),
        "6": node("Capture", value=["5", 0]),
        "7": node("Capture", value=["4", 0]),
        "8": node("Capture", value=["1", 0]),
    }
    run = executor()
    first = run.run(prompt)
    assert first.ok, first.error or first.validation.node_errors
    # The second run takes the source from the cache; what it hands on must still be the pristine encoding.
    prompt["2"]["inputs"]["strength"] = 3.0
    second = run.run(prompt)
    assert second.ok and "1" in second.cached
    for result in (first, second):
        ((cond, options),) = result.outputs["8"]["value"][0]
        assert set(options) == {"pooled_output"} and cond.eq(1.0).all() and options["pooled_output"].eq(1.0).all()
    combined = second.outputs["6"]["value"][0]
    assert combined[0][1]["area"] == (16, 8, 8, 0) and combined[0][1]["strength"] == 3.0
    assert combined[1][1]["end_percent"] == 0.5 and "area" not in combined[1][1]
    ((zeroed, zeroed_options),) = second.outputs["7"]["value"][0]
    assert not zeroed.any() and not zeroed_options["pooled_output"].any()


@pytest.mark.parametrize(("inputs", "kind"), [
    ({"width": 32, "height": 64, "x": 0, "y": 0, "strength": 1.0}, "value_smaller_than_min"),
    ({"width": 64, "height": 64, "x": 0, "y": 0, "strength": 11.0}, "value_bigger_than_max"),
])
def test_the_validator_enforces_the_declared_ranges(inputs: dict[str, Any], kind: str) -> None:
    prompt = {"1": node("TextConditioning", value=1.0), "2": node("ConditioningSetArea", conditioning=["1", 0], **inputs),
              "3": node("Capture", value=["2", 0])}
    result = executor().run(prompt)
    assert [e["type"] for e in result.validation.node_errors["2"]["errors"]] == [kind]
