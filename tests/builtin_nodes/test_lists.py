"""CreateList and GetItemFromList: output lists as ComfyUI's executor maps them, through the real executor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builtin_nodes.conftest import call


def test_create_list_joins_inputs_in_socket_order() -> None:
    assert call("CreateList", **{"inputs.input2": ["c"], "inputs.input0": ["a", "a2"], "inputs.input1": ["b"]}) == (
        ["a", "a2", "b", "c"],)


def test_create_list_maps_the_next_node_over_its_items(run_prompt: Any) -> None:
    prompt = {"x": {"class_type": "PrimitiveString", "inputs": {"value": "cat"}},
              "y": {"class_type": "PrimitiveString", "inputs": {"value": "horse"}},
              "l": {"class_type": "CreateList", "inputs": {"inputs.input0": ["x", 0], "inputs.input1": ["y", 0]}},
              "n": {"class_type": "StringLength", "inputs": {"string": ["l", 0]}},
              "p": {"class_type": "PreviewAny", "inputs": {"source": ["n", 0]}},
              "g": {"class_type": "GetItemFromList", "inputs": {"list": ["l", 0], "index": -1}},
              "q": {"class_type": "PreviewAny", "inputs": {"source": ["g", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["p"] == {"text": ["3", "5"]}  # StringLength ran once per item
    assert result.outputs["q"] == {"text": ["horse"]}


@pytest.mark.parametrize(("items", "index", "expected"), [
    (["a", "b", "c"], 0, "a"), (["a", "b", "c"], 2, "c"), (["a", "b", "c"], -1, "c"),
    ([["x", "y"]], 1, "y"),  # one value that is itself a list
])
def test_get_item_from_list(items: list[Any], index: int, expected: Any) -> None:
    assert call("GetItemFromList", list=items, index=[index]) == (expected,)


def test_get_item_out_of_range_names_the_input() -> None:
    with pytest.raises(IndexError, match=r"input 'index': 3 is out of range for a list of 3 items \(use 0..2"):
        call("GetItemFromList", list=["a", "b", "c"], index=[3])
