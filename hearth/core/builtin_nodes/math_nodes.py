"""Math nodes: integer and float arithmetic, conversions, and safe expression evaluators (Hearth's MathExpression
over a, b and c; ComfyUI's ComfyMathExpression over its growing inputs a..z)."""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Callable
from typing import Any

from hearth.core.builtin_nodes import expressions
from hearth.core.builtin_nodes.dynamic_inputs import LETTERS, DynamicSection, autogrow_names, gather
from hearth.core.builtin_nodes.expressions import MAX_EXPONENT, bounded_round
from hearth.core.builtin_nodes.expressions import ExpressionError as ExpressionError  # noqa: I001 - re-exported
from hearth.core.schema import Input, Output, Schema, node

CATEGORY = "utils/math"
BIG = sys.maxsize

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs, "min": min, "max": max, "round": bounded_round, "int": int, "float": float,
    **{name: getattr(math, name) for name in ("floor", "ceil", "sqrt", "exp", "log", "log2", "log10", "sin", "cos",
                                               "tan", "asin", "acos", "atan", "atan2", "hypot", "trunc")},
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
OPERATIONS = ["add", "subtract", "multiply", "divide", "floor_divide", "modulo", "power", "min", "max"]


def evaluate(expression: str, variables: dict[str, float]) -> Any:
    """Evaluate arithmetic over ``variables``, ``pi``, ``e`` and ``tau`` without ``eval`` (MathExpression's rules)."""
    return expressions.evaluate(expression, {**_CONSTANTS, **variables}, _FUNCTIONS)


def _apply(op: str, a: Any, b: Any) -> Any:
    if op in ("divide", "floor_divide", "modulo") and b == 0:
        raise ZeroDivisionError(f"{op} by zero (b is 0)")
    function = {"add": operator.add, "subtract": operator.sub, "multiply": operator.mul, "divide": operator.truediv,
                "floor_divide": operator.floordiv, "modulo": operator.mod, "power": operator.pow, "min": min,
                "max": max}[op]
    try:
        return function(a, b)
    except OverflowError:
        raise OverflowError(f"{op} of {a} and {b}: the result is too large for a float") from None


@node(Schema("IntMath", category=CATEGORY, display_name="Int Math",
             inputs=[Input.int("a", min=-BIG, max=BIG), Input.int("b", min=-BIG, max=BIG),
                     Input.combo("operation", OPERATIONS, default="add")],
             outputs=[Output("INT")]))
def int_math(a: int, b: int, operation: str) -> int:
    if operation == "power" and abs(b) > MAX_EXPONENT:
        # 3 ** 10**9 would run for minutes and fill memory; ComfyUI has no guard here.
        raise ValueError(f"power: exponent {b} is too large (limit {MAX_EXPONENT})")
    return int(_apply(operation, a, b))


@node(Schema("FloatMath", category=CATEGORY, display_name="Float Math",
             inputs=[Input.float("a", min=-BIG, max=BIG, step=0.01), Input.float("b", min=-BIG, max=BIG, step=0.01),
                     Input.combo("operation", OPERATIONS, default="add")],
             outputs=[Output("FLOAT")]))
def float_math(a: float, b: float, operation: str) -> float:
    return float(_apply(operation, a, b))


@node(Schema("MathExpression", category=CATEGORY, display_name="Math Expression",
             description="Evaluate an arithmetic expression over a, b and c (operators, comparisons, math functions).",
             inputs=[Input.string("expression", default="a + b"),
                     Input.float("a", min=-BIG, max=BIG, optional=True),
                     Input.float("b", min=-BIG, max=BIG, optional=True),
                     Input.float("c", min=-BIG, max=BIG, optional=True)],
             outputs=[Output("FLOAT"), Output("INT")]))
def math_expression(expression: str, a: float = 0.0, b: float = 0.0, c: float = 0.0) -> tuple[float, int]:
    value = evaluate(expression, {"a": a, "b": b, "c": c})
    return float(value), int(value)


@node(Schema("IntToFloat", category=CATEGORY, display_name="Int to Float",
             inputs=[Input.int("value", min=-BIG, max=BIG)], outputs=[Output("FLOAT")]))
def int_to_float(value: int) -> float:
    return float(value)


@node(Schema("FloatToInt", category=CATEGORY, display_name="Float to Int",
             inputs=[Input.float("value", min=-BIG, max=BIG), Input.combo("rounding", ["round", "floor", "ceil"])],
             outputs=[Output("INT")]))
def float_to_int(value: float, rounding: str) -> int:
    return int({"round": round, "floor": math.floor, "ceil": math.ceil}[rounding](value))


COMFY_MAX_EXPONENT = 4000  # ComfyUI's cap on pow()


def _sum(*args: Any) -> Any:
    """ComfyUI's ``sum``: ``sum(values)`` and ``sum(a, b, c)`` both work."""
    if len(args) == 1 and isinstance(args[0], list):
        return sum(args[0])
    return sum(args)


def _pow(base: Any, exponent: Any) -> Any:
    return expressions.power(base, exponent, COMFY_MAX_EXPONENT)


COMFY_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sum": _sum, "min": min, "max": max, "abs": abs, "round": bounded_round, "pow": _pow, "sqrt": math.sqrt,
    "ceil": math.ceil, "floor": math.floor, "log": math.log, "log2": math.log2, "log10": math.log10,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "int": int, "float": float,
}
_VALUES_SPEC, _VALUES_CLAIMS = autogrow_names("values", ("value", ("FLOAT,INT,BOOLEAN", {})), LETTERS, minimum=1)


class ComfyMathExpression:
    """ComfyUI's Math Expression: ``expression`` over the linked inputs ``a``..``z`` (sockets ``values.a``...)
    and ``values`` (their list), with ComfyUI's functions (sum, min, max, abs, round, pow, sqrt, ceil, floor,
    log, log2, log10, sin, cos, tan, int, float). Gives the result as FLOAT, INT (truncated) and BOOL.
    ComfyUI evaluates with simpleeval; Hearth's own evaluator allows the same arithmetic but no strings or
    attribute access, and refuses powers, shifts and roundings that would run for minutes."""

    DISPLAY_NAME = "Math Expression"
    CATEGORY = "utilities"
    RETURN_TYPES = ("FLOAT", "INT", "BOOLEAN")
    RETURN_NAMES = ("FLOAT", "INT", "BOOL")
    FUNCTION = "execute"
    SEARCH_ALIASES = ["math", "expression", "formula", "calculate", "calculator", "eval"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": DynamicSection({"expression": ("STRING", {"default": "a + b", "multiline": True}),
                                            "values": _VALUES_SPEC}, _VALUES_CLAIMS)}

    def execute(self, expression: str, **inputs: Any) -> tuple[float, int, bool]:
        if not expression.strip():
            raise ValueError("expression: the expression is empty; write one such as a + b")
        values = gather("values", inputs, LETTERS)
        for name, value in values.items():
            if not isinstance(value, (int, float)):
                raise ValueError(f"input 'values.{name}': expected a FLOAT, INT or BOOLEAN, got "
                                 f"{type(value).__name__}")
        names: dict[str, Any] = {"True": True, "False": False, **values, "values": list(values.values())}
        result = expressions.evaluate(expression, names, COMFY_FUNCTIONS, max_exponent=COMFY_MAX_EXPONENT)
        if not isinstance(result, (int, float)):
            raise ValueError(f"expression {expression!r} must give a number, got {type(result).__name__}: "
                             f"{result!r}")
        try:
            as_float = float(result)
        except OverflowError:
            raise ValueError(f"expression {expression!r} gave a result too large for a float: "
                             f"{expressions.short(result)}") from None
        if not math.isfinite(as_float):
            raise ValueError(f"expression {expression!r} gave a non-finite result: {result}")
        return as_float, int(result), bool(result)


NODES = {cls.__name__: cls for cls in (int_math, float_math, math_expression, int_to_float, float_to_int,
                                        ComfyMathExpression)}
