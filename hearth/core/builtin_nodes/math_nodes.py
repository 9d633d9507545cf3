"""Math nodes: integer and float arithmetic, conversions, and a safe expression evaluator over a, b and c."""

from __future__ import annotations

import ast
import math
import operator
import sys
from collections.abc import Callable
from typing import Any

from hearth.core.schema import Input, Output, Schema, node

CATEGORY = "utils/math"
BIG = sys.maxsize

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs, "min": min, "max": max, "round": round, "int": int, "float": float,
    **{name: getattr(math, name) for name in ("floor", "ceil", "sqrt", "exp", "log", "log2", "log10", "sin", "cos",
                                               "tan", "asin", "acos", "atan", "atan2", "hypot", "trunc")},
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
MAX_EXPONENT = 1000
MAX_POWER_BITS = 100_000
OPERATIONS = ["add", "subtract", "multiply", "divide", "floor_divide", "modulo", "power", "min", "max"]


class ExpressionError(ValueError):
    """The expression uses something the evaluator does not allow; the message says what."""


def evaluate(expression: str, variables: dict[str, float]) -> float:
    """Evaluate arithmetic over ``variables`` without ``eval``: only numbers, operators and math functions."""
    try:
        tree = ast.parse(expression.strip() or "0", mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {expression!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("expression nests too deeply") from None
    names = {**_CONSTANTS, **variables}

    def walk(item: ast.AST) -> Any:
        if isinstance(item, ast.Expression):
            return walk(item.body)
        if isinstance(item, ast.Constant) and isinstance(item.value, (int, float)) and not isinstance(item.value, bool):
            return item.value
        if isinstance(item, ast.Name):
            if item.id not in names:
                raise ExpressionError(f"unknown name {item.id!r} in expression; use a, b, c, pi, e or tau")
            return names[item.id]
        if isinstance(item, ast.BinOp) and type(item.op) in _BINARY:
            left, right = walk(item.left), walk(item.right)
            if isinstance(item.op, ast.Pow):
                return _power(left, right)
            return _BINARY[type(item.op)](left, right)
        if isinstance(item, ast.UnaryOp) and type(item.op) in _UNARY:
            return _UNARY[type(item.op)](walk(item.operand))
        if isinstance(item, ast.Compare) and all(type(op) in _COMPARE for op in item.ops):
            left = walk(item.left)
            for op, comparator in zip(item.ops, item.comparators, strict=True):
                right = walk(comparator)
                if not _COMPARE[type(op)](left, right):
                    return 0
                left = right
            return 1
        if isinstance(item, ast.IfExp):
            return walk(item.body) if walk(item.test) else walk(item.orelse)
        if (isinstance(item, ast.Call) and isinstance(item.func, ast.Name) and item.func.id in _FUNCTIONS
                and not item.keywords):
            return _FUNCTIONS[item.func.id](*(walk(arg) for arg in item.args))
        raise ExpressionError(f"{type(item).__name__} is not allowed in a math expression")

    try:
        return walk(tree)
    except ExpressionError:
        raise
    except (ArithmeticError, ValueError, TypeError) as exc:
        # "math range error" alone does not say which expression; the user typed it, so name it.
        raise ExpressionError(f"cannot evaluate {expression!r}: {exc}") from None
    except RecursionError:
        raise ExpressionError("expression nests too deeply") from None


def _power(base: Any, exponent: Any) -> Any:
    """``base ** exponent``, refusing the few powers that would take minutes or gigabytes to compute."""
    if abs(exponent) > MAX_EXPONENT:
        raise ExpressionError(f"exponent {exponent} is too large (limit {MAX_EXPONENT})")
    # Exponents are bounded, but nested powers of integers still grow without bound: (9**999)**999.
    if isinstance(base, int) and isinstance(exponent, int) and base.bit_length() * abs(exponent) > MAX_POWER_BITS:
        raise ExpressionError(f"result of {_short(base)} ** {exponent} is too large (limit {MAX_POWER_BITS} bits)")
    result = operator.pow(base, exponent)
    if isinstance(result, complex):
        raise ExpressionError(f"{_short(base)} ** {exponent} is not a real number")
    return result


def _short(value: Any) -> str:
    return f"<{value.bit_length()}-bit int>" if isinstance(value, int) and value.bit_length() > 64 else str(value)


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


NODES = {cls.__name__: cls for cls in (int_math, float_math, math_expression, int_to_float, float_to_int)}
