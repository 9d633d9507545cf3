"""Prompt emphasis syntax: ``(text:1.3)``, ``(text)`` = x1.1, ``[text]`` = /1.1, nesting multiplies, ``\\(`` escapes.

:func:`parse_prompt_weights` turns a prompt into ``[(text, weight), ...]`` segments. The weights are applied later,
per token, by each family's text encoder (SD's interpolates from the empty prompt's embedding; Wan's scales its
UMT5 states). Pure string work, in core because several families' plugins read the same syntax.

The syntax is the one most prompts are written in (A1111's): an explicit weight scales its parentheses' content
instead of the 1.1, and it nests: ``((cat:1.5))`` is 1.1 x 1.5. Brackets left open at the end of a prompt still
apply; a closing bracket with nothing to close is plain text. ``(a:b)`` (no number) is plain text at x1.1.
"""

from __future__ import annotations

import re

ROUND = 1.1
SQUARE = 1 / 1.1

_PIECES = re.compile(
    r"""
    \\[\\()\[\]]                                  # an escaped bracket or backslash
    | \(                                          # open emphasis
    | \[                                          # open de-emphasis
    | :\s*(?P<weight>[+-]?(?:\d+\.?\d*|\.\d+))\s*\)   # explicit weight closing a round bracket
    | \)
    | \]
    | [^\\()\[\]:]+                               # plain text
    | [:\\]                                       # a lone colon or backslash is text too
    """,
    re.VERBOSE,
)


def parse_prompt_weights(prompt: str) -> list[tuple[str, float]]:
    """Split ``prompt`` into ``(text, weight)`` segments; adjacent segments of equal weight are merged.

    >>> parse_prompt_weights("a (red:1.5) [cat] \\\\(b\\\\)")
    [('a ', 1.0), ('red', 1.5), (' ', 1.0), ('cat', 0.9090909090909091), (' (b)', 1.0)]
    """
    segments: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for segment in segments[start:]:
            segment[1] *= factor

    for match in _PIECES.finditer(prompt):
        piece = match.group(0)
        if piece.startswith("\\") and len(piece) == 2:
            segments.append([piece[1], 1.0])
        elif piece == "(":
            round_open.append(len(segments))
        elif piece == "[":
            square_open.append(len(segments))
        elif match.group("weight") is not None and round_open:
            scale(round_open.pop(), float(match.group("weight")))
        elif piece == ")" and round_open:
            scale(round_open.pop(), ROUND)
        elif piece == "]" and square_open:
            scale(square_open.pop(), SQUARE)
        else:
            segments.append([piece, 1.0])
    for start in round_open:
        scale(start, ROUND)
    for start in square_open:
        scale(start, SQUARE)

    merged: list[tuple[str, float]] = []
    for text, weight in segments:
        if not text:
            continue
        if merged and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + text, weight)
        else:
            merged.append((text, weight))
    return merged or [("", 1.0)]
