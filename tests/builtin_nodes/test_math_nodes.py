"""IntMath, FloatMath, conversions and the safe MathExpression evaluator."""

from __future__ import annotations

import math

import pytest

from hearth.core.builtin_nodes.math_nodes import ExpressionError, evaluate
from tests.builtin_nodes.conftest import call


@pytest.mark.parametrize(("op", "a", "b", "expected"), [
    ("add", 7, 3, 10), ("subtract", 7, 3, 4), ("multiply", 7, 3, 21), ("divide", 7, 2, 3),
    ("divide", -7, 2, -3), ("floor_divide", -7, 2, -4), ("modulo", -7, 3, 2), ("power", 2, 10, 1024),
    ("power", 2, -1, 0), ("min", 7, 3, 3), ("max", 7, 3, 7),
])
def test_int_math(op: str, a: int, b: int, expected: int) -> None:
    result = call("IntMath", a=a, b=b, operation=op)
    assert result == (expected,) and isinstance(result[0], int)


@pytest.mark.parametrize(("op", "a", "b", "expected"), [
    ("add", 1.5, 0.25, 1.75), ("subtract", 1.5, 0.25, 1.25), ("multiply", 1.5, 2.0, 3.0),
    ("divide", 1.0, 4.0, 0.25), ("floor_divide", 7.5, 2.0, 3.0), ("modulo", 7.5, 2.0, 1.5),
    ("power", 2.0, 0.5, math.sqrt(2)), ("min", -1.0, 2.0, -1.0), ("max", -1.0, 2.0, 2.0),
])
def test_float_math(op: str, a: float, b: float, expected: float) -> None:
    (result,) = call("FloatMath", a=a, b=b, operation=op)
    assert result == pytest.approx(expected) and isinstance(result, float)


@pytest.mark.parametrize("node", ["IntMath", "FloatMath"])
@pytest.mark.parametrize("op", ["divide", "floor_divide", "modulo"])
def test_division_by_zero_names_the_operation(node: str, op: str) -> None:
    with pytest.raises(ZeroDivisionError, match=rf"^{op} by zero \(b is 0\)$"):
        call(node, a=1, b=0, operation=op)


def test_int_power_refuses_huge_exponents() -> None:
    assert call("IntMath", a=3, b=1000, operation="power") == (3 ** 1000,)
    with pytest.raises(ValueError, match="exponent .*limit 1000"):
        call("IntMath", a=3, b=10 ** 9, operation="power")
    with pytest.raises(ValueError, match="exponent .*limit 1000"):
        call("IntMath", a=3, b=-1001, operation="power")


def test_conversions() -> None:
    assert call("IntToFloat", value=3) == (3.0,)
    assert call("FloatToInt", value=2.5, rounding="round") == (2,)  # banker's rounding, as Python's round
    assert call("FloatToInt", value=-2.5, rounding="floor") == (-3,)
    assert call("FloatToInt", value=2.1, rounding="ceil") == (3,)


def test_math_expression_returns_float_and_int() -> None:
    assert call("MathExpression", expression="a * b + c", a=2.0, b=3.5, c=0.25) == (7.25, 7)
    assert call("MathExpression", expression="a + b") == (0.0, 0)


@pytest.mark.parametrize(("expression", "expected"), [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("2 ** 10", 1024), ("7 // 2", 3), ("7 % 4", 3), ("-a", -2),
    ("a < b", 1), ("a < b < 1", 0), ("a if b > a else c", 2), ("max(a, b, c)", 5), ("abs(-a)", 2),
    ("floor(2.7) + ceil(2.2)", 5), ("round(sqrt(16))", 4), ("pi", math.pi), ("tau / 2", math.pi),
    ("not 0", True), ("log(e)", 1.0), ("", 0),
])
def test_evaluate(expression: str, expected: float) -> None:
    assert evaluate(expression, {"a": 2, "b": 3, "c": 5}) == pytest.approx(expected)


@pytest.mark.parametrize(("expression", "message"), [
    ("__import__('os')", "Call is not allowed"),
    ("open('x')", "Call is not allowed"),
    ("a.__class__", "Attribute is not allowed"),
    ("(1).__class__.__bases__", "Attribute is not allowed"),
    ("(lambda: 1)()", "Call is not allowed"),
    ("lambda: 1", "Lambda is not allowed"),
    ("[x for x in (1, 2)]", "ListComp is not allowed"),
    ("'text'", "Constant is not allowed"),
    ("max(*[1, 2])", "not allowed"),
    ("round(a, ndigits=2)", "Call is not allowed"),
    ("x + 1", "unknown name 'x'"),
    ("a +", "cannot parse expression"),
    ("(a := 3)", "NamedExpr is not allowed"),
])
def test_evaluate_rejects_anything_but_arithmetic(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate(expression, {"a": 1.0})


@pytest.mark.parametrize("expression", ["9 ** 10000", "2 ** -5000", "(9 ** 999) ** 999", "((9 ** 9) ** 999) ** 999",
                                        "(2 ** 1000) ** 1000"])
def test_evaluate_refuses_huge_powers_quickly(expression: str) -> None:
    with pytest.raises(ExpressionError, match="too large"):
        evaluate(expression, {})


def test_math_expression_node_reports_expression_errors() -> None:
    with pytest.raises(ExpressionError, match="Attribute is not allowed"):
        call("MathExpression", expression="a.real", a=1.0, b=0.0, c=0.0)


def test_math_expression_complex_result_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="not a real number"):
        call("MathExpression", expression="(0 - 8) ** 0.5", a=0.0, b=0.0, c=0.0)


@pytest.mark.parametrize(("expression", "message"), [
    ("a / 0", "cannot evaluate 'a / 0': float division by zero"),
    ("exp(1000)", "cannot evaluate 'exp\\(1000\\)': math range error"),
    ("sqrt(-1)", "math domain error"),
    ("max()", "max expected at least 1 argument"),
    ("10.0 ** 400", "cannot evaluate"),
    ("-" * 2000 + "1", "nests too deeply"),
])
def test_evaluate_errors_name_the_expression(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate(expression, {"a": 1.0})


def test_float_overflow_names_the_operation() -> None:
    with pytest.raises(OverflowError, match="^power of 10.0 and 400.0: the result is too large for a float$"):
        call("FloatMath", a=10.0, b=400.0, operation="power")
