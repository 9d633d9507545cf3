"""Logic nodes of ComfyUI's ``comfy_extras/nodes_logic.py``: the lazy If/Else switch, Custom Combo, Not/And/Or and
Pass or None.

``ComfySwitchNode`` declares both branches lazy: the executor evaluates only the branch ``switch`` selects (the
other branch's nodes never run), as ComfyUI's ``check_lazy_status`` arranges. Not/And/Or use Python's truthiness,
as ComfyUI's do.
"""

from __future__ import annotations

from typing import Any

from hearth.core.builtin_nodes.dynamic_inputs import DynamicSection, autogrow_prefix, gather

CATEGORY = "utilities/logic"
MATCH = "COMFY_MATCHTYPE_V3"
_MISSING = object()  # an unconnected optional input; None means "connected, not evaluated yet"


def _template(template_id: str) -> dict[str, Any]:
    return {"template_id": template_id, "allowed_types": "*"}


class ComfySwitchNode:
    """ComfyUI's If/Else Switch: ``on_true`` when ``switch`` is on, else ``on_false``; only that branch runs.
    An unconnected selected branch gives None, as in ComfyUI."""

    DISPLAY_NAME = "If/Else Switch"
    CATEGORY = CATEGORY
    RETURN_TYPES = (MATCH,)
    RETURN_NAMES = ("output",)
    FUNCTION = "execute"
    EXPERIMENTAL = True
    SEARCH_ALIASES = ["if", "then", "switch", "conditional", "branch"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        branch = (MATCH, {"lazy": True, "template": _template("switch")})
        return {"required": {"switch": ("BOOLEAN", {})},
                "optional": {"on_false": branch, "on_true": branch}}

    def check_lazy_status(self, switch: bool, on_false: Any = _MISSING, on_true: Any = _MISSING) -> list[str]:
        if switch and on_true is None:
            return ["on_true"]
        if not switch and on_false is None:
            return ["on_false"]
        return []

    def execute(self, switch: bool, on_true: Any = _MISSING, on_false: Any = _MISSING) -> tuple[Any]:
        selected = on_true if switch else on_false
        return (None if selected is _MISSING else selected,)


class CustomCombo:
    """ComfyUI's Custom Combo: a dropdown whose options the user writes in the browser; outputs the chosen
    string and the ``index`` widget the frontend keeps beside it. The options are the frontend's own widgets,
    so (as ComfyUI) the choice is not checked against a list."""

    DISPLAY_NAME = "Custom Combo"
    CATEGORY = "utilities"
    RETURN_TYPES = ("STRING", "INT")
    RETURN_NAMES = ("STRING", "INDEX")
    FUNCTION = "execute"
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"choice": ("COMBO", {"options": []})}, "optional": DynamicSection({}, claim_all=True)}

    @classmethod
    def VALIDATE_INPUTS(cls, choice: str, index: int = 0, **kwargs: Any) -> bool:
        return True

    def execute(self, choice: str, index: int = 0, **kwargs: Any) -> tuple[str, int]:
        return choice, int(index)


class ComfyNotNode:
    """ComfyUI's Not: True when ``value`` is falsy."""

    DISPLAY_NAME = "Not"
    CATEGORY = CATEGORY
    DESCRIPTION = "Logical NOT operation. Returns true if the value is falsy. Uses Python's rules for truthiness."
    RETURN_TYPES = ("BOOLEAN",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("*", {})}}

    def execute(self, value: Any) -> tuple[bool]:
        return (not _truth(value, "value"),)


def _truth(value: Any, name: str) -> bool:
    try:
        return bool(value)
    except Exception as exc:  # a tensor of several elements has no single truth value
        raise ValueError(f"input {name!r}: a {type(value).__name__} has no single truth value ({exc}); "
                         f"link a BOOLEAN, number or string") from None


def _values_node(node_id: str, display: str, description: str, combine: Any, aliases: list[str]) -> type:
    spec, claims = autogrow_prefix("values", ("value", ("*", {})), "value", minimum=1, maximum=10, optional=False)

    def input_types(cls: type) -> dict[str, Any]:
        return {"required": DynamicSection({"values": spec}, claims)}

    def execute(self: Any, **kwargs: Any) -> tuple[bool]:
        values = gather("values", kwargs, [f"value{i}" for i in range(10)])
        return (combine(_truth(v, f"values.{k}") for k, v in values.items()),)

    return type(node_id, (), {
        "DISPLAY_NAME": display, "CATEGORY": CATEGORY, "DESCRIPTION": description, "RETURN_TYPES": ("BOOLEAN",),
        "FUNCTION": "execute", "SEARCH_ALIASES": aliases, "INPUT_TYPES": classmethod(input_types),
        "execute": execute, "__module__": __name__,
        "__doc__": f"ComfyUI's {display}: {description}"})


ComfyAndNode = _values_node(
    "ComfyAndNode", "And", "Logical AND operation. Returns true if all of the values are truthy. Uses Python's "
    "rules for truthiness.", all, ["all", "every"])
ComfyOrNode = _values_node(
    "ComfyOrNode", "Or", "Logical OR operation. Returns true if any of the values are truthy. Uses Python's "
    "rules for truthiness.", any, ["any", "some"])


class ComfyPassOrNoneNode:
    """ComfyUI's Pass or None: ``anything`` if it is not None, else ``default``; ``is_none`` says whether the
    result is None."""

    DISPLAY_NAME = "Pass or None"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Passes the input through, or a default value when input is None/not provided, or outputs None "
                   "when both inputs are None/not provided.")
    RETURN_TYPES = (MATCH, "BOOLEAN")
    RETURN_NAMES = ("output", "is_none")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        item = (MATCH, {"template": _template("value")})
        return {"required": {}, "optional": {"anything": item, "default": item}}

    def execute(self, anything: Any = None, default: Any = None) -> tuple[Any, bool]:
        if anything is None:
            return default, default is None
        return anything, False


NODES = {cls.__name__: cls for cls in (ComfySwitchNode, CustomCombo, ComfyNotNode, ComfyAndNode, ComfyOrNode,
                                        ComfyPassOrNoneNode)}
