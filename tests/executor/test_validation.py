"""Validation reports ComfyUI's error types in the /prompt response shape, per node and input."""

from __future__ import annotations

from typing import Any

import pytest
import toy_nodes

from hearth.core.executor import Executor


@pytest.fixture
def check() -> Any:
    executor = Executor(toy_nodes.registry())
    return lambda prompt, **kw: executor.validate(prompt, **kw)


def only_error(result: Any, node_id: str) -> dict[str, Any]:
    errors = result.node_errors[node_id]["errors"]
    assert len(errors) == 1, errors
    return errors[0]


def test_unknown_class_is_invalid_prompt(check: Any) -> None:
    result = check({"1": {"class_type": "Nope", "inputs": {}}})
    assert result.response() == {"error": {"type": "invalid_prompt",
                                           "message": "Cannot execute because node Nope does not exist.",
                                           "details": "Node ID '#1'", "extra_info": {}}, "node_errors": {}}


def test_no_outputs(check: Any) -> None:
    assert check({"1": {"class_type": "Int", "inputs": {"value": 1}}}).error["type"] == "prompt_no_outputs"


@pytest.mark.parametrize(("inputs", "kind", "message"), [
    ({}, "required_input_missing", "Required input is missing"),
    ({"value": "seven"}, "invalid_input_type", "Failed to convert an input value to a INT value"),
    ({"value": 2.5}, "invalid_input_type", "Failed to convert an input value to a INT value"),
    ({"value": -5000}, "value_smaller_than_min", "Value -5000 smaller than min of -1000"),
    ({"value": 5000}, "value_bigger_than_max", "Value 5000 bigger than max of 1000"),
])
def test_literal_errors(check: Any, inputs: dict[str, Any], kind: str, message: str) -> None:
    result = check({"1": {"class_type": "Int", "inputs": inputs}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    assert result.error["type"] == "prompt_outputs_failed_validation"
    err = only_error(result, "1")
    assert (err["type"], err["message"]) == (kind, message)
    assert err["extra_info"]["input_name"] == "value"
    assert result.node_errors["1"]["dependent_outputs"] == ["2"]
    assert result.node_errors["1"]["class_type"] == "Int"


def test_value_not_in_list(check: Any) -> None:
    result = check({"1": {"class_type": "Pick", "inputs": {"mode": "three"}},
                    "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    err = only_error(result, "1")
    assert err["type"] == "value_not_in_list" and err["details"] == "mode: 'three' not in ['one', 'two']"


def test_strings_are_converted_to_declared_numbers(check: Any) -> None:
    prompt = {"1": {"class_type": "Int", "inputs": {"value": "7"}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}
    assert check(prompt).ok
    assert Executor(toy_nodes.registry()).run(prompt).outputs == {"2": {"value": [7]}}


def test_bad_links(check: Any) -> None:
    missing = check({"2": {"class_type": "Show", "inputs": {"value": ["9", 0]}}})
    assert only_error(missing, "2")["type"] == "bad_linked_input"
    assert "node 9 is not in the prompt" in only_error(missing, "2")["details"]
    slot = check({"1": {"class_type": "Int", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 3]}}})
    assert "has 1 outputs, slot 3 requested" in only_error(slot, "2")["details"]


def test_return_type_mismatch(check: Any) -> None:
    result = check({"1": {"class_type": "Text", "inputs": {"text": "x"}},
                    "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
                    "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}}})
    err = only_error(result, "2")
    assert err["type"] == "return_type_mismatch"
    assert err["details"] == "a, received_type(STRING) mismatch input_type(INT)"
    assert result.node_errors["2"]["dependent_outputs"] == ["3"]


def test_custom_validation(check: Any) -> None:
    def prompt(value: Any) -> dict[str, Any]:
        return {"1": {"class_type": "Checked", "inputs": {"value": value, "other": 0}},
                "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}

    assert check(prompt(50)).ok  # out of the declared range, but the node validates value itself
    failed = only_error(check(prompt(3)), "1")
    assert failed["type"] == "custom_validation_failed" and "value must be even, got 3" in failed["details"]
    crashed = only_error(check(prompt(99)), "1")
    assert crashed["type"] == "exception_during_validation" and crashed["details"] == "validator crashed"


def test_valid_outputs_still_run_when_another_fails(check: Any) -> None:
    prompt = {"1": {"class_type": "Int", "inputs": {"value": 1}},
              "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
              "3": {"class_type": "Int", "inputs": {"value": 5000}},
              "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}}}
    result = check(prompt)
    assert result.ok and result.outputs == ["2"]
    assert result.node_errors["3"]["dependent_outputs"] == ["4"]
    ran = Executor(toy_nodes.registry()).run(prompt)
    assert ran.ok and ran.outputs == {"2": {"value": [1]}}


def test_cycle_is_named(check: Any) -> None:
    result = check({"1": {"class_type": "Add", "inputs": {"a": ["3", 0], "b": 1}},
                    "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
                    "3": {"class_type": "Add", "inputs": {"a": ["2", 0], "b": 1}},
                    "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}}})
    assert result.error["type"] == "prompt_outputs_failed_validation"
    cycle_errors = {node: e["errors"][0] for node, e in result.node_errors.items()}
    assert set(cycle_errors) == {"1", "2", "3"}
    assert cycle_errors["1"]["type"] == "dependency_cycle"
    assert cycle_errors["1"]["details"] == "3 -> 2 -> 1 -> 3"
    assert "dependency_cycle" in result.first_problem()


def test_deep_chain_has_no_recursion_limit(check: Any) -> None:
    prompt: dict[str, Any] = {"0": {"class_type": "Int", "inputs": {"value": 0}}}
    for i in range(1, 5000):
        prompt[str(i)] = {"class_type": "Add", "inputs": {"a": [str(i - 1), 0], "b": 1}}
    prompt["out"] = {"class_type": "Show", "inputs": {"value": ["4999", 0]}}
    assert check(prompt).ok
    assert Executor(toy_nodes.registry()).run(prompt).outputs == {"out": {"value": [4999]}}


def test_partial_targets(check: Any) -> None:
    prompt = {"1": {"class_type": "Int", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
              "3": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}
    assert check(prompt, targets=["3"]).outputs == ["3"]
    assert check(prompt, targets=["8"]).error["type"] == "invalid_prompt"


def test_first_problem_names_node_input_and_type(check: Any) -> None:
    result = check({"1": {"class_type": "Int", "inputs": {"value": 5000}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    assert result.first_problem() == ("node 1 (Int) input 'value': value_bigger_than_max: "
                                      "Value 5000 bigger than max of 1000: value")


def test_value_not_in_an_empty_list_says_the_list_is_empty() -> None:
    from hearth.core.node_registry import NodeRegistry

    class Loader:
        RETURN_TYPES = ("INT",)
        FUNCTION = "run"
        OUTPUT_NODE = True

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {"ckpt_name": ([],)}}

        def run(self, ckpt_name: str) -> tuple[int]:
            return (0,)

    result = Executor(NodeRegistry.from_classes({"Loader": Loader})).validate(
        {"1": {"class_type": "Loader", "inputs": {"ckpt_name": "sd15.safetensors"}}})
    err = only_error(result, "1")
    assert err["type"] == "value_not_in_list"
    assert err["details"].startswith("ckpt_name: 'sd15.safetensors' not in [] (the list is empty")
