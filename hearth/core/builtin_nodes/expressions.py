"""A safe arithmetic expression evaluator for the math-expression nodes: ``ast`` walked by hand, never ``eval``.

Allowed: numbers, the given names, ``+ - * / // % **``, bitwise operators, comparisons (``in`` too), ``and`` /
``or`` / ``not``, ``x if c else y``, indexing a list (``values[0]``) and calls of a whitelist of functions by name.
Refused, with a message that quotes the offending part: attributes, other calls, keywords, lambdas,
comprehensions, strings, assignment. Arithmetic takes numbers only (``values * 10**9`` would build a huge list).

What could hang the server or fill its memory is bounded: the expression's length, the exponent of ``**`` and
``pow()``, the size of an integer power and of a shift, and ``round``'s digits. Without those, ``9**9**9`` or
``round(1, -10**9)`` would compute for minutes.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

MAX_LENGTH = 10_000  # characters; template expressions are a few dozen
MAX_EXPONENT = 1000
MAX_RESULT_BITS = 100_000  # an integer power or shift may grow to this many bits
MAX_ROUND_DIGITS = 1000

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
                                            ast.Invert: operator.invert}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_BITWISE_NEEDS_INT = (ast.BitAnd, ast.BitOr, ast.BitXor, ast.Invert, ast.LShift, ast.RShift)


class ExpressionError(ValueError):
    """The expression uses something the evaluator does not allow, or fails; the message says what and where."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # bool is an int, as in Python


def short(value: Any) -> str:
    return f"<{value.bit_length()}-bit int>" if isinstance(value, int) and value.bit_length() > 64 else repr(value)


def power(base: Any, exponent: Any, max_exponent: int = MAX_EXPONENT) -> Any:
    """``base ** exponent``, refusing the powers that would take minutes or gigabytes to compute."""
    if not (_is_number(base) and _is_number(exponent)):
        raise ExpressionError(f"** takes numbers, got {type(base).__name__} and {type(exponent).__name__}")
    if abs(exponent) > max_exponent:
        raise ExpressionError(f"exponent {short(exponent)} is too large (limit {max_exponent})")
    # The exponent is bounded, but nested powers of integers still grow without bound: (9**999)**999.
    if isinstance(base, int) and isinstance(exponent, int) and base.bit_length() * abs(exponent) > MAX_RESULT_BITS:
        raise ExpressionError(f"result of {short(base)} ** {exponent} is too large (limit {MAX_RESULT_BITS} bits)")
    result = operator.pow(base, exponent)
    if isinstance(result, complex):
        raise ExpressionError(f"{short(base)} ** {exponent} is not a real number")
    return result


def _shift(op: ast.AST, left: Any, right: Any) -> Any:
    if isinstance(op, ast.LShift) and right > 0 and left.bit_length() + right > MAX_RESULT_BITS:
        raise ExpressionError(f"result of {short(left)} << {right} is too large (limit {MAX_RESULT_BITS} bits)")
    return left << right if isinstance(op, ast.LShift) else left >> right


def bounded_round(number: Any, ndigits: Any = None) -> Any:
    """``round``, refusing digit counts that would make Python build 10**ndigits."""
    if ndigits is not None and abs(ndigits) > MAX_ROUND_DIGITS:
        raise ExpressionError(f"round: {ndigits} digits is too many (limit {MAX_ROUND_DIGITS})")
    return round(number) if ndigits is None else round(number, ndigits)


def evaluate(expression: str, variables: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]] | None = None,
             *, max_exponent: int = MAX_EXPONENT, where: str = "expression") -> Any:
    """Evaluate ``expression`` over ``variables`` (numbers, or lists of numbers) and ``functions`` (called by
    name, positional arguments only). ``where`` names the input in messages."""
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(f"{where}: {len(expression)} characters is too long (limit {MAX_LENGTH})")
    try:
        tree = ast.parse(expression.strip() or "0", mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {expression!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"{where}: expression nests too deeply") from None
    functions = functions or {}

    def part(item: ast.AST) -> str:
        segment = ast.get_source_segment(expression, item) or type(item).__name__
        return segment if len(segment) <= 60 else segment[:57] + "..."

    def refuse(item: ast.AST, why: str) -> ExpressionError:
        return ExpressionError(f"{where}: {why} in {part(item)!r}")

    def number(item: ast.AST) -> Any:
        value = walk(item)
        if not _is_number(value):
            raise refuse(item, f"arithmetic needs a number, not a {type(value).__name__}")
        return value

    def walk(item: ast.AST) -> Any:
        if isinstance(item, ast.Expression):
            return walk(item.body)
        if isinstance(item, ast.Constant) and _is_number(item.value):
            return item.value
        if isinstance(item, ast.Name):
            if item.id in variables:
                return variables[item.id]
            names = ", ".join(sorted(k for k in variables if k.isidentifier())) or "none"
            raise ExpressionError(f"{where}: unknown name {item.id!r} in expression; the names it may use: {names}")
        if isinstance(item, ast.BinOp):
            if isinstance(item.op, ast.Pow):
                return power(number(item.left), number(item.right), max_exponent)
            if isinstance(item.op, (ast.LShift, ast.RShift)):
                left, right = number(item.left), number(item.right)
                if not (isinstance(left, int) and isinstance(right, int)):
                    raise refuse(item, "shifts take integers")
                return _shift(item.op, left, right)
            if type(item.op) in _BINARY:
                left, right = number(item.left), number(item.right)
                if isinstance(item.op, _BITWISE_NEEDS_INT) and not (isinstance(left, int) and isinstance(right, int)):
                    raise refuse(item, "bitwise operators take integers")
                return _BINARY[type(item.op)](left, right)
        if isinstance(item, ast.UnaryOp) and type(item.op) in _UNARY:
            operand = walk(item.operand)
            if isinstance(item.op, ast.Not):
                return not operand
            if not _is_number(operand) or (isinstance(item.op, ast.Invert) and not isinstance(operand, int)):
                raise refuse(item, f"{type(item.op).__name__} needs a number")
            return _UNARY[type(item.op)](operand)
        if isinstance(item, ast.BoolOp):
            value = walk(item.values[0])
            for following in item.values[1:]:
                if bool(value) == isinstance(item.op, ast.Or):
                    return value
                value = walk(following)
            return value
        if isinstance(item, ast.Compare) and all(type(op) in _COMPARE for op in item.ops):
            left = walk(item.left)
            for op, comparator in zip(item.ops, item.comparators, strict=True):
                right = walk(comparator)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(item, ast.IfExp):
            return walk(item.body) if walk(item.test) else walk(item.orelse)
        if isinstance(item, ast.Subscript):
            container, index = walk(item.value), walk(item.slice)
            if not isinstance(container, list) or not isinstance(index, int):
                raise refuse(item, "only a list can be indexed, by an integer")
            if not -len(container) <= index < len(container):
                raise refuse(item, f"index {index} is out of range for {len(container)} values")
            return container[index]
        if (isinstance(item, ast.Call) and isinstance(item.func, ast.Name) and item.func.id in functions
                and not item.keywords and not any(isinstance(arg, ast.Starred) for arg in item.args)):
            return functions[item.func.id](*(walk(arg) for arg in item.args))
        if isinstance(item, ast.Call) and isinstance(item.func, ast.Name):
            allowed = ", ".join(sorted(functions)) or "none"
            raise refuse(item, f"Call is not allowed (of {item.func.id!r} or with keywords or *args; "
                               f"the functions: {allowed})")
        raise refuse(item, f"{type(item).__name__} is not allowed")

    try:
        return walk(tree)
    except ExpressionError:
        raise
    except (ArithmeticError, ValueError, TypeError) as exc:
        # "math range error" alone does not say which expression; the user typed it, so name it.
        raise ExpressionError(f"cannot evaluate {expression!r}: {exc}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"{where}: expression nests too deeply") from None
