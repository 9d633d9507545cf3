"""ComfyMathExpression: ComfyUI's inputs (``values.a``...), outputs (FLOAT, INT, BOOL) and functions, and an
evaluator that refuses hostile expressions quickly with a message naming the input and the offending part."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hearth.core.builtin_nodes.math_nodes import ExpressionError
from tests.builtin_nodes.conftest import call


def comfy(expression: str, **values: Any) -> tuple[float, int, bool]:
    return call("ComfyMathExpression", expression=expression, **{f"values.{k}": v for k, v in values.items()})


@pytest.mark.parametrize(("expression", "values", "expected"), [
    # Expressions from ComfyUI's templates, with hand-computed results.
    ("a", {"a": 3}, (3.0, 3, True)),
    ("a/2", {"a": 5}, (2.5, 2, True)),  # INT truncates, as int()
    ("max(5, round(a * 24)) + (5 - (max(5, round(a * 24)) % 17)) % 17", {"a": 2.0}, (56.0, 56, True)),
    ("max(((a + 15) // 16) * 16, 256)", {"a": 300}, (304.0, 304, True)),
    ("max(((a + 15) // 16) * 16, 256)", {"a": 100}, (256.0, 256, True)),
    ("a * b + 1", {"a": 3, "b": 24}, (73.0, 73, True)),
    ("(a // 32) * 32", {"a": 1000}, (992.0, 992, True)),
    ("1 + floor(a*b/8)*8", {"a": 5, "b": 25}, (121.0, 121, True)),
    # ComfyUI's other names and functions.
    ("sum(values) / 3", {"a": 1, "b": 2, "c": 0}, (1.0, 1, True)),
    ("sum(a, b, c)", {"a": 1, "b": 2.5, "c": True}, (4.5, 4, True)),
    ("values[1] - values[-1]", {"a": 1, "b": 10, "c": 4}, (6.0, 6, True)),
    ("pow(2, 10)", {}, (1024.0, 1024, True)),
    ("a > b", {"a": 1, "b": 2}, (0.0, 0, False)),
    ("a and b", {"a": True, "b": 0}, (0.0, 0, False)),
    ("-7 / 2", {}, (-3.5, -3, True)),  # int() truncates towards zero
    ("a if a > 0 else -a", {"a": -4}, (4.0, 4, True)),
])
def test_comfy_math_expression(expression: str, values: dict[str, Any], expected: tuple[float, int, bool]) -> None:
    result = comfy(expression, **values)
    assert result == expected
    assert type(result[0]) is float and type(result[1]) is int and type(result[2]) is bool


def test_through_the_executor_with_dotted_inputs(run_prompt: Any) -> None:
    prompt = {"d": {"class_type": "PrimitiveInt", "inputs": {"value": 3}},
              "f": {"class_type": "PrimitiveFloat", "inputs": {"value": 25.0}},
              "m": {"class_type": "ComfyMathExpression",
                    "inputs": {"expression": "a * b + 1", "values.a": ["d", 0], "values.b": ["f", 0]}},
              "fl": {"class_type": "PreviewAny", "inputs": {"source": ["m", 0]}},
              "in": {"class_type": "PreviewAny", "inputs": {"source": ["m", 1]}},
              "bo": {"class_type": "PreviewAny", "inputs": {"source": ["m", 2]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert [result.outputs[k]["text"] for k in ("fl", "in", "bo")] == [["76.0"], ["76"], ["True"]]


def test_object_info_has_comfyui_shape(hearth_runtime: Any) -> None:
    info = hearth_runtime.nodes["ComfyMathExpression"].object_info()
    assert info["input"]["required"]["expression"] == ["STRING", {"default": "a + b", "multiline": True}]
    assert info["input_order"] == {"required": ["expression", "values"]}
    kind, options = info["input"]["required"]["values"]
    assert kind == "COMFY_AUTOGROW_V3"
    assert options["template"]["names"][:3] == ["a", "b", "c"] and len(options["template"]["names"]) == 26
    assert info["output"] == ["FLOAT", "INT", "BOOLEAN"] and info["output_name"] == ["FLOAT", "INT", "BOOL"]


@pytest.mark.parametrize(("expression", "message"), [
    ("9**9**9", "exponent 387420489 is too large"),
    ("pow(9, 9**9)", "exponent 387420489 is too large"),
    ("(2**4000)**4000", "too large"),
    ("1 << 10**9", "too large"),
    ("round(1, -10**9)", "too many"),
    ("values * 10**9", "arithmetic needs a number, not a list in 'values'"),
    ("a.__class__", "Attribute is not allowed in 'a.__class__'"),
    ("__import__('os').system('true')", "Call is not allowed"),
    ("open('/etc/passwd')", "Call is not allowed .*of 'open'"),
    ("(lambda: 1)()", "not allowed"),
    ("[x for x in values]", "ListComp is not allowed"),
    ("'a' * 10**9", "Constant is not allowed"),
    ("x + 1", "unknown name 'x' in expression; the names it may use: False, True, a, values"),
    ("a +", "cannot parse expression"),
    ("(" * 3000 + "a" + ")" * 3000, "parse|nests too deeply"),
    ("-" * 100_000 + "a", "too long"),
    ("a + " * 2400 + "a", "too long|nests too deeply"),
    ("1e308 * 10", "non-finite"),
    ("values[5]", "index 5 is out of range for 1 values"),
    ("sqrt(-1)", "math domain error"),
])
def test_hostile_expressions_fail_fast_with_a_clear_message(expression: str, message: str) -> None:
    start = time.monotonic()
    with pytest.raises(ValueError, match=message):
        comfy(expression, a=2)
    assert time.monotonic() - start < 1.0


def test_errors_are_expression_errors_naming_the_input() -> None:
    with pytest.raises(ExpressionError, match="^expression: Attribute is not allowed"):
        comfy("a.real", a=1)


def test_empty_expression_and_non_number_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="expression: the expression is empty"):
        comfy("  ")
    with pytest.raises(ValueError, match="input 'values.b': expected a FLOAT, INT or BOOLEAN, got str"):
        comfy("a + b", a=1, b="2")
