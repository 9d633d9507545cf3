"""ComfyUI's type rules for links: the "any type" trick, ``*``, comma unions, and combos known by their list.

Packs declare types with ``str`` subclasses whose ``__ne__`` (often ``__eq__`` too) claims equality with everything
(rgthree, KJNodes, Impact, ComfyUI-Logic...); ComfyUI's ``validate_node_input`` honours them through ``not received
!= expected``. Hearth reads such a type as ``"*"`` and never compares a pack's type object with ``==``: an
always-equal object once compared equal to ``"COMBO"`` and made every "any" input a combo with no choices.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hearth.core.executor import Executor, parse_prompt
from hearth.core.node_registry import NodeRegistry
from hearth.core.nodes import (
    NodeDefinition,
    is_wildcard,
    portable_input_types,
    portable_return_types,
    restored_input_types,
    type_name,
    types_match,
)


class AnyType(str):
    """rgthree / KJNodes / Impact: only ``__ne__`` is overridden (the object stays hashable)."""

    def __ne__(self, other: object) -> bool:
        return False


class AlwaysEqualProxy(str):
    """ComfyUI-Logic and others: ``__eq__`` always true as well (which makes the object unhashable)."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False


class Named(str):
    """A str subclass that compares as a str: no wildcard."""


ANY_NE = AnyType("*")
ANY_EQ = AlwaysEqualProxy("*")
ANY_NAMED = AnyType("any_type")  # the name does not matter to ComfyUI: __ne__ decides


def test_type_names() -> None:
    assert type_name(ANY_NE) == type_name(ANY_EQ) == type_name(ANY_NAMED) == "*"
    assert all(is_wildcard(t) for t in (ANY_NE, ANY_EQ, ANY_NAMED))
    assert not any(is_wildcard(t) for t in ("INT", "*", Named("INT"), ["a"], 3))
    assert type_name(["a", "b"]) == type_name(("a",)) == "COMBO"
    assert type_name("INT,FLOAT") == "INT,FLOAT"
    assert type(type_name(Named("LATENT"))) is str and type_name(Named("LATENT")) == "LATENT"


def test_types_match_is_comfyuis_validate_node_input() -> None:
    assert types_match("INT", "INT") and not types_match("INT", "FLOAT")
    assert types_match("INT", ANY_NE) and types_match(ANY_EQ, "LATENT") and types_match(ANY_NAMED, "INT")
    assert types_match("INT", "*") and types_match("*", "MODEL")
    assert types_match("STRING,BOOLEAN", "STRING,INT") and not types_match("STRING,BOOLEAN", "STRING,INT", strict=True)
    assert types_match("STRING", "STRING,INT", strict=True) and not types_match("FLOAT", "STRING,INT")
    assert types_match("COMFY_MATCHTYPE_V3", "IMAGE")
    assert types_match(["a", "b"], ["a", "b"]) and not types_match(["a"], "INT")


def node_class(inputs: dict[str, Any], returns: tuple[Any, ...] = (), fn: Any = None, output: bool = False) -> type:
    def run(self: Any, **kwargs: Any) -> Any:
        return fn(**kwargs) if fn else tuple(kwargs.values())

    return type("N", (), {"INPUT_TYPES": classmethod(lambda cls: {"required": inputs}), "RETURN_TYPES": returns,
                          "FUNCTION": "run", "run": run, "OUTPUT_NODE": output, "CATEGORY": "test"})


def show(**kwargs: Any) -> dict[str, Any]:
    return {"ui": {"value": [repr(v) for v in kwargs.values()]}}


CLASSES = {
    "Int": node_class({"value": ("INT", {"default": 0})}, ("INT",)),
    "Text": node_class({"text": ("STRING", {})}, ("STRING",)),
    "Float": node_class({"value": ("FLOAT", {})}, ("FLOAT",)),
    "AnyPassNe": node_class({"value": (ANY_NE, {})}, (ANY_NE,)),
    "AnyPassEq": node_class({"value": (ANY_EQ, {})}, (ANY_EQ,)),
    "AnyPassNamed": node_class({"value": (ANY_NAMED, {})}, (ANY_NAMED,)),
    "AnyOut": node_class({"value": ("INT", {})}, (ANY_EQ,)),
    "StarIn": node_class({"value": ("*", {})}, ("*",)),
    "UnionOut": node_class({"value": ("INT", {})}, ("INT,FLOAT",)),
    "ShowInt": node_class({"value": ("INT", {"forceInput": True})}, (), show, output=True),
    "ShowFloat": node_class({"value": ("FLOAT", {"forceInput": True})}, (), show, output=True),
    "ShowNumber": node_class({"value": ("INT,FLOAT", {})}, (), show, output=True),
    "ShowAny": node_class({"value": (ANY_EQ, {})}, (), show, output=True),
    "ShowChoice": node_class({"choice": ("COMBO", {"options": ["a", "b"]})}, (), show, output=True),
}


@pytest.fixture
def registry() -> NodeRegistry:
    return NodeRegistry.from_classes(CLASSES)


def link(source: str, slot: int = 0) -> list[Any]:
    return [source, slot]


def run(registry: NodeRegistry, prompt: dict[str, Any]) -> Any:
    return Executor(registry).run({k: {"class_type": c, "inputs": i} for k, (c, i) in prompt.items()})


def test_an_any_type_input_is_no_combo(registry: NodeRegistry) -> None:
    for name in ("AnyPassNe", "AnyPassEq", "AnyPassNamed", "ShowAny"):
        spec = registry[name].inputs().specs["value"]
        assert (spec.type, spec.choices, spec.is_widget) == ("*", None, False), name
    assert registry["AnyPassEq"].return_types == ("*",)
    choice = registry["ShowChoice"].inputs().specs["choice"]
    assert (choice.type, choice.choices) == ("COMBO", ("a", "b"))


@pytest.mark.parametrize("through", ["AnyPassNe", "AnyPassEq", "AnyPassNamed", "StarIn"])
def test_int_through_an_any_node_into_an_int_input(registry: NodeRegistry, through: str) -> None:
    result = run(registry, {"1": ("Int", {"value": 7}), "2": (through, {"value": link("1")}),
                            "3": ("ShowInt", {"value": link("2")})})
    assert result.ok, result.validation.node_errors
    assert result.outputs["3"] == {"value": ["7"]}


def test_an_any_output_feeds_typed_inputs(registry: NodeRegistry) -> None:
    result = run(registry, {"1": ("Int", {"value": 2}), "2": ("AnyOut", {"value": link("1")}),
                            "3": ("ShowFloat", {"value": link("2")}), "4": ("ShowChoice", {"choice": link("2")})})
    assert result.ok, result.validation.node_errors


def test_an_any_input_takes_a_literal_unchanged(registry: NodeRegistry) -> None:
    result = run(registry, {"1": ("ShowAny", {"value": "not a number"})})
    assert result.ok, result.validation.node_errors
    assert result.outputs["1"] == {"value": ["'not a number'"]}


def test_comma_unions(registry: NodeRegistry) -> None:
    ok = run(registry, {"1": ("Int", {"value": 1}), "2": ("ShowNumber", {"value": link("1")}),
                        "3": ("Float", {"value": 0.5}), "4": ("ShowNumber", {"value": link("3")}),
                        "5": ("UnionOut", {"value": 3}), "6": ("ShowFloat", {"value": link("5")})})
    assert ok.ok, ok.validation.node_errors
    bad = run(registry, {"1": ("Text", {"text": "x"}), "2": ("ShowNumber", {"value": link("1")})})
    [problem] = bad.validation.node_errors["2"]["errors"]
    assert problem["type"] == "return_type_mismatch"
    assert problem["details"] == "value, received_type(STRING) mismatch input_type(INT,FLOAT)"


def test_a_plain_mismatch_is_still_refused(registry: NodeRegistry) -> None:
    bad = run(registry, {"1": ("Text", {"text": "x"}), "2": ("ShowInt", {"value": link("1")})})
    assert bad.validation.node_errors["2"]["errors"][0]["type"] == "return_type_mismatch"


def test_object_info_shows_any_types_as_star(registry: NodeRegistry) -> None:
    info = json.loads(json.dumps(registry.object_info()))
    assert info["AnyPassEq"]["input"]["required"]["value"] == ["*", {}]
    assert info["AnyPassNamed"]["input"]["required"]["value"] == ["*", {}]
    assert info["AnyPassNamed"]["output"] == info["AnyOut"]["output"] == ["*"]
    assert info["UnionOut"]["output"] == ["INT,FLOAT"]


class FlexibleOptional(dict):
    """rgthree's FlexibleOptionalInputType: every name is an optional input of its type (Any Switch...)."""

    def __init__(self, kind: Any, data: dict[str, Any] | None = None) -> None:
        super().__init__(data or {})
        self.kind, self.data = kind, data or {}

    def __getitem__(self, key: str) -> Any:
        return self.data[key] if key in self.data else (self.kind,)

    def __contains__(self, key: object) -> bool:
        return True


class AnySwitch:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - the node contract's name
        return {"required": {}, "optional": FlexibleOptional(ANY_NE, {"first": ("INT", {"default": 0})})}

    RETURN_TYPES = (ANY_NE,)
    FUNCTION = "switch"

    def switch(self, **kwargs: Any) -> tuple[Any]:
        return (sorted(kwargs.items()),)


def test_hidden_values_that_are_no_type_names_stay_as_they_are() -> None:
    # Easy-Use's XY Plot hides a dict of its plot settings: "plot_dict": (plot_dict,). ComfyUI shows it as it is.
    settings = {"steps": {"min": 1, "max": 100}}
    plot = node_class({"x": ("INT", {})}, ("PIPE_LINE",))
    plain = plot.INPUT_TYPES
    plot.INPUT_TYPES = classmethod(lambda cls: {**plain(), "hidden": {"plot_dict": (settings,), "p": "PROMPT"}})
    definition = NodeDefinition("Plot", plot)
    assert definition.object_info()["input"]["hidden"] == {"plot_dict": [settings], "p": "PROMPT"}
    assert definition.inputs().specs["plot_dict"].type == "*" and definition.inputs().specs["p"].type == "PROMPT"
    assert portable_input_types(plot.INPUT_TYPES())["hidden"]["plot_dict"] == (settings,)


def test_a_section_that_claims_every_name_gets_every_input() -> None:
    registry = NodeRegistry.from_classes({**CLASSES, "AnySwitch": AnySwitch})
    specs = registry["AnySwitch"].inputs().specs
    assert list(specs) == ["first"]  # validation sees the declared inputs; the node gets the others too
    assert "any_07" in specs and specs.get("any_07").type == "*" and specs["first"].type == "INT"
    result = run(registry, {"1": ("Int", {"value": 5}), "2": ("AnySwitch", {"any_01": link("1"), "any_02": "x",
                                                                              "first": 1}),
                            "3": ("ShowAny", {"value": link("2")})})
    assert result.ok, result.validation.node_errors
    assert result.outputs["3"] == {"value": [repr([("any_01", 5), ("any_02", "x"), ("first", 1)])]}


class MultiInput(str):
    """VideoHelperSuite's imageOrLatent / floatOrInt: equal to the types it allows, shown as its first."""

    def __new__(cls, string: str, allowed: Any = "*") -> MultiInput:
        made = super().__new__(cls, string)
        made.allowed = allowed
        return made

    def __ne__(self, other: object) -> bool:
        if self.allowed == "*" or other == "*":
            return False
        return other not in self.allowed


class ContainsAll(dict):
    """VideoHelperSuite's hidden section: claims the format widgets its frontend adds to Video Combine."""

    def __contains__(self, other: object) -> bool:
        return True

    def __getitem__(self, key: str) -> Any:
        return super().get(key, (None, {}))


class ByPassTypeTuple(tuple):
    """Impact / Easy-Use: every slot past the first answers the first's type (an any type here)."""

    def __getitem__(self, index: Any) -> Any:
        return super().__getitem__(0 if isinstance(index, int) and index > 0 else index)


IMAGE_OR_LATENT = MultiInput("IMAGE", ["IMAGE", "LATENT"])


def test_a_type_with_rules_of_its_own_decides_its_links() -> None:
    combine = node_class({"images": (IMAGE_OR_LATENT,), "rate": (MultiInput("FLOAT", ["FLOAT", "INT"]), {})},
                         (), show, output=True)
    combine_inputs = combine.INPUT_TYPES
    combine.INPUT_TYPES = classmethod(lambda cls: {**combine_inputs(), "hidden": ContainsAll({"uid": "UNIQUE_ID"})})
    latent = node_class({}, ("LATENT", IMAGE_OR_LATENT), lambda: ("latent", "either"))
    registry = NodeRegistry.from_classes({**CLASSES, "Combine": combine, "Latent": latent})
    specs = registry["Combine"].inputs().specs
    assert specs["images"].type == "IMAGE" and specs["images"].declared is IMAGE_OR_LATENT
    assert registry["Combine"].object_info()["input"]["required"]["images"] == ["IMAGE"]  # ComfyUI shows it so
    result = run(registry, {"1": ("Latent", {}), "2": ("Int", {"value": 8}),
                            "3": ("Combine", {"images": link("1"), "rate": link("2"), "crf": 19}),
                            "4": ("ShowFloat", {"value": link("2")})})  # sanity: INT into FLOAT is refused
    assert result.validation.node_errors.keys() == {"4"}, result.validation.node_errors
    result = run(registry, {"1": ("Latent", {}), "2": ("Int", {"value": 8}),
                            "3": ("Combine", {"images": link("1"), "rate": link("2"), "crf": 19})})
    assert result.ok, result.validation.node_errors
    assert result.outputs["3"] == {"value": ["'latent'", "8", "19", "'3'"]}  # "crf": claimed by the hidden section
    refused = run(registry, {"1": ("Text", {"text": "x"}), "2": ("Combine", {"images": link("1"), "rate": 1.0})})
    assert refused.validation.node_errors["2"]["errors"][0]["type"] == "return_type_mismatch"
    # A received type with rules of its own: LATENT's MultiInput output feeds what it allows.
    fed = run(registry, {"1": ("Latent", {}), "2": ("ShowAny", {"value": link("1", 1)}),
                         "3": ("Combine", {"images": link("1", 1), "rate": 2.0})})
    assert fed.ok, fed.validation.node_errors


def test_outputs_past_a_bypass_tuple_take_its_answer() -> None:
    switch = node_class({"select": ("INT", {})}, ByPassTypeTuple((ANY_NE,)))
    registry = NodeRegistry.from_classes({**CLASSES, "InversedSwitch": switch})
    definition = registry["InversedSwitch"]
    assert definition.open_outputs and definition.return_types == ("*",)
    assert definition.output_type(3) == ("*", None) and registry["Int"].output_type(1) is None
    checked = Executor(registry).validator.validate(parse_prompt({
        "1": {"class_type": "InversedSwitch", "inputs": {"select": 2}},
        "2": {"class_type": "ShowInt", "inputs": {"value": ["1", 2]}}}))
    assert checked.ok, checked.node_errors
    refused = Executor(registry).validator.validate(parse_prompt({
        "1": {"class_type": "Int", "inputs": {"value": 2}},
        "2": {"class_type": "ShowInt", "inputs": {"value": ["1", 1]}}}))
    assert refused.node_errors["2"]["errors"][0]["message"] == "Bad linked input: no such output slot"


def test_input_types_cross_a_process_boundary_with_their_meaning() -> None:
    # A pack host describes its nodes as plain data (JSON here): "any" types and open sections must survive it.
    class Switch(AnySwitch):
        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - the node contract's name
            return {"required": {"a": (ANY_NAMED, {}), "b": (ANY_EQ,), "c": (["x", "y"], {"default": "x"})},
                    "optional": FlexibleOptional(ANY_NE, {"first": ("INT", {"default": 0})}),
                    "hidden": {"id": "UNIQUE_ID"}}

    wire = json.loads(json.dumps(portable_input_types(Switch.INPUT_TYPES())))
    returns = json.loads(json.dumps(portable_return_types((ANY_EQ, ["p", "q"], Named("IMAGE")))))
    assert returns == ["*", ["p", "q"], "IMAGE"]
    proxy = type("Proxy", (), {"INPUT_TYPES": classmethod(lambda cls: restored_input_types(wire)),
                               "RETURN_TYPES": tuple(returns), "FUNCTION": "switch", "switch": AnySwitch.switch})
    specs = NodeDefinition("Proxy", proxy).inputs().specs
    assert {name: (spec.type, spec.section) for name, spec in specs.items()} == {
        "a": ("*", "required"), "b": ("*", "required"), "c": ("COMBO", "required"), "first": ("INT", "optional"),
        "id": ("UNIQUE_ID", "hidden")}
    assert specs["c"].choices == ("x", "y")
    assert "any_09" in specs and specs["any_09"].type == "*" and specs["any_09"].section == "optional"
    assert portable_input_types({"required": {"n": ("INT", {})}}) == {"required": {"n": ("INT", {})}}
    assert restored_input_types({"required": {}}) == {"required": {}}


def test_a_node_whose_input_types_raises_is_named_not_dropped() -> None:
    class Broken:
        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - the node contract's name
            raise RuntimeError("the model list is not there")

        RETURN_TYPES = ("INT",)
        FUNCTION = "run"

        def run(self) -> tuple[int]:
            return (1,)

    registry = NodeRegistry.from_classes({"Broken": Broken, **CLASSES})
    errors: dict[str, str] = {}
    assert "Broken" not in registry.object_info(errors)  # as ComfyUI's /object_info: left out
    assert errors == registry.input_errors() == {
        "Broken": "Broken.INPUT_TYPES() raised RuntimeError: the model list is not there"}
    entry = NodeDefinition("Broken", Broken).broken_info(errors["Broken"])
    assert entry["error"] == errors["Broken"] and entry["output"] == ["INT"] and entry["input"] == {"required": {}}
    result = run(registry, {"1": ("Broken", {}), "2": ("ShowInt", {"value": link("1")})})
    [problem] = result.validation.node_errors["1"]["errors"]
    assert "RuntimeError: the model list is not there" in problem["details"]
    assert "the model list is not there" in result.validation.first_problem()
