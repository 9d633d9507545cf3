"""List nodes with ComfyUI's names: Create List and Get Item From List.

Both take their inputs as lists (``INPUT_IS_LIST``): an input linked to a node that outputs a list (an output
list, one value per run of what follows) arrives whole. Create List joins its inputs into one output list, so the
nodes after it run once per item; Get Item From List picks one item back out.
"""

from __future__ import annotations

from typing import Any

from hearth.core.builtin_nodes.dynamic_inputs import DynamicSection, autogrow_prefix, gather

_INPUTS_SPEC, _INPUTS_CLAIMS = autogrow_prefix("inputs", ("input", ("*", {})), "input", minimum=1, maximum=10,
                                              optional=False)
_ORDER = [f"input{index}" for index in range(10)]


class CreateList:
    """ComfyUI's Create List: the items of ``inputs.input0``, ``inputs.input1``... in socket order, as one output
    list (an input that is itself an output list contributes all its items)."""

    DISPLAY_NAME = "Create List"
    CATEGORY = "utilities"
    RETURN_TYPES = ("*",)
    RETURN_NAMES = ("list",)
    OUTPUT_IS_LIST = (True,)
    INPUT_IS_LIST = True
    FUNCTION = "execute"
    SEARCH_ALIASES = ["Image Iterator", "Text Iterator", "Iterator"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": DynamicSection({"inputs": _INPUTS_SPEC}, _INPUTS_CLAIMS)}

    def execute(self, **given: Any) -> tuple[list[Any]]:
        items: list[Any] = []
        for values in gather("inputs", given, _ORDER).values():
            items += values
        return (items,)


class GetItemFromList:
    """ComfyUI's Get Item From List: item ``index`` (negative counts from the end) of ``list``, an output list or
    a single value that is itself a Python list."""

    DISPLAY_NAME = "Get Item From List"
    CATEGORY = "utilities"
    RETURN_TYPES = ("*",)
    INPUT_IS_LIST = True
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"list": ("*", {}), "index": ("INT", {"default": 0})}}

    def execute(self, **inputs: Any) -> tuple[Any]:
        # The input is named "list" (ComfyUI's name), so it is read from the keywords: a parameter of that name
        # would hide the builtin type this needs.
        given, index = inputs["list"], inputs["index"]
        items = given[0] if len(given) == 1 and isinstance(given[0], (tuple, list)) else given
        position = int(index[0])
        if not -len(items) <= position < len(items):
            raise IndexError(f"input 'index': {position} is out of range for a list of {len(items)} items "
                             f"(use 0..{len(items) - 1}, or -1 for the last)")
        return (items[position],)


NODES = {"CreateList": CreateList, "GetItemFromList": GetItemFromList}
