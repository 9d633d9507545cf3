"""String nodes with ComfyUI's names and inputs: concatenate, slice, case, trim, replace, compare, regex.

The regex nodes run a user's pattern, and a pattern such as ``(a|aa)+$`` backtracks for exponential time. So they use
the ``regex`` engine in its ``re``-compatible mode (``VERSION0``: ComfyUI's ``re`` semantics and flags) with a time
limit, in a helper thread that releases the GIL: the server keeps answering, an interrupt stops the node at once,
and a pattern that runs past :data:`REGEX_TIME_LIMIT` fails the node with a message naming it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace as replace_flag
from typing import TypeVar

import regex

from hearth.core import context
from hearth.core.schema import Input, Output, Schema, node

CATEGORY = "text"  # ComfyUI moved its string nodes from utils/string to text
REGEX_TIME_LIMIT = 1.0  # seconds per regex node call; real patterns on prompt-sized text take microseconds
_POLL = 0.05  # how often the waiting node checks for an interrupt
_T = TypeVar("_T")


class RegexTimeout(ValueError):
    """A user's regular expression ran past the time limit (catastrophic backtracking, or a huge input)."""


def _flags(case_insensitive: bool, multiline: bool, dotall: bool) -> int:
    return (regex.IGNORECASE if case_insensitive else 0) | (regex.MULTILINE if multiline else 0) \
        | (regex.DOTALL if dotall else 0)


_REGEX_FLAGS = [Input.boolean("case_insensitive", default=True, advanced=True),
                Input.boolean("multiline", default=False, advanced=True),
                Input.boolean("dotall", default=False, advanced=True)]


@node(Schema("StringConcatenate", category=CATEGORY, display_name="Concatenate Text",
             inputs=[Input.string("string_a", multiline=True), Input.string("string_b", multiline=True),
                     Input.string("delimiter", default="")],
             outputs=[Output("STRING")]))
def string_concatenate(string_a: str, string_b: str, delimiter: str) -> str:
    return delimiter.join((string_a, string_b))


@node(Schema("StringSubstring", category=CATEGORY, display_name="Substring",
             inputs=[Input.string("string", multiline=True), Input.int("start"), Input.int("end")],
             outputs=[Output("STRING")]))
def string_substring(string: str, start: int, end: int) -> str:
    return string[start:end]


@node(Schema("StringLength", category=CATEGORY, display_name="Text Length",
             inputs=[Input.string("string", multiline=True)], outputs=[Output("INT", "length")]))
def string_length(string: str) -> int:
    return len(string)


@node(Schema("CaseConverter", category=CATEGORY, display_name="Convert Text Case",
             inputs=[Input.string("string", multiline=True),
                     Input.combo("mode", ["UPPERCASE", "lowercase", "Capitalize", "Title Case"])],
             outputs=[Output("STRING")]))
def case_converter(string: str, mode: str) -> str:
    convert = {"UPPERCASE": str.upper, "lowercase": str.lower, "Capitalize": str.capitalize, "Title Case": str.title}
    return convert[mode](string)


@node(Schema("StringTrim", category=CATEGORY, display_name="Trim Text",
             inputs=[Input.string("string", multiline=True), Input.combo("mode", ["Both", "Left", "Right"])],
             outputs=[Output("STRING")]))
def string_trim(string: str, mode: str) -> str:
    return {"Both": str.strip, "Left": str.lstrip, "Right": str.rstrip}[mode](string)


@node(Schema("StringReplace", category=CATEGORY, display_name="Replace Text",
             inputs=[Input.string("string", multiline=True), Input.string("find", multiline=True),
                     Input.string("replace", multiline=True)],
             outputs=[Output("STRING")]))
def string_replace(string: str, find: str, replace: str) -> str:
    return string.replace(find, replace)


@node(Schema("StringContains", category=CATEGORY, display_name="Contains Text",
             inputs=[Input.string("string", multiline=True), Input.string("substring", multiline=True),
                     Input.boolean("case_sensitive", default=True, advanced=True)],
             outputs=[Output("BOOLEAN", "contains")]))
def string_contains(string: str, substring: str, case_sensitive: bool) -> bool:
    return substring in string if case_sensitive else substring.lower() in string.lower()


@node(Schema("StringCompare", category=CATEGORY, display_name="Compare Text",
             inputs=[Input.string("string_a", multiline=True), Input.string("string_b", multiline=True),
                     Input.combo("mode", ["Starts With", "Ends With", "Equal"]),
                     Input.boolean("case_sensitive", default=True, advanced=True)],
             outputs=[Output("BOOLEAN")]))
def string_compare(string_a: str, string_b: str, mode: str, case_sensitive: bool) -> bool:
    if not case_sensitive:
        string_a, string_b = string_a.lower(), string_b.lower()
    return {"Starts With": string_a.startswith, "Ends With": string_a.endswith,
            "Equal": string_a.__eq__}[mode](string_b)


def _shown(pattern: str) -> str:
    text = repr(pattern)
    return text if len(text) <= 80 else text[:77] + "..."


def _compile(pattern: str, flags: int) -> regex.Pattern[str]:
    try:
        return regex.compile(pattern, flags | regex.VERSION0)
    except regex.error as exc:
        raise ValueError(f"invalid regular expression {_shown(pattern)}: {exc}") from None


def _limited(pattern: str, string: str, work: Callable[[], _T]) -> _T:
    """``work()`` (regex calls made with ``concurrent=True, timeout=REGEX_TIME_LIMIT``) run in a helper thread.

    The node's thread waits in short steps so an interrupt ends the node within ``_POLL`` seconds; the helper,
    left behind, stops itself at its own timeout. Past the limit (plus a margin for the engine's own check) the
    node fails even if the engine has not noticed yet.
    """
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the node's thread, which raises it there
            box["error"] = exc

    helper = threading.Thread(target=run, name="hearth-regex", daemon=True)
    helper.start()
    deadline = time.monotonic() + REGEX_TIME_LIMIT + 0.5
    while helper.is_alive():
        helper.join(_POLL)
        context.check_interrupted()
        if helper.is_alive() and time.monotonic() > deadline:
            box["error"] = TimeoutError()
            break
    error = box.get("error")
    if isinstance(error, TimeoutError):
        raise RegexTimeout(
            f"regular expression {_shown(pattern)} ran past the {REGEX_TIME_LIMIT:g} s limit on "
            f"{len(string)} characters of text; simplify it (nested repeats such as (a+)+ or (a|aa)+ backtrack "
            f"exponentially)") from None
    if isinstance(error, BaseException):
        raise error
    return box["value"]  # type: ignore[return-value]


def _search(pattern: regex.Pattern[str], string: str) -> regex.Match[str] | None:
    return pattern.search(string, concurrent=True, timeout=REGEX_TIME_LIMIT)


def _matches(pattern: regex.Pattern[str], string: str) -> list[regex.Match[str]]:
    return list(pattern.finditer(string, concurrent=True, timeout=REGEX_TIME_LIMIT))


@node(Schema("RegexMatch", category=CATEGORY, display_name="Match Text",
             inputs=[Input.string("string", multiline=True), Input.string("regex_pattern", multiline=True),
                     *_REGEX_FLAGS],
             outputs=[Output("BOOLEAN", "matches")]))
def regex_match(string: str, regex_pattern: str, case_insensitive: bool, multiline: bool, dotall: bool) -> bool:
    pattern = _compile(regex_pattern, _flags(case_insensitive, multiline, dotall))
    return _limited(regex_pattern, string, lambda: _search(pattern, string)) is not None


@node(Schema("RegexExtract", category=CATEGORY, display_name="Extract Text",
             inputs=[Input.string("string", multiline=True), Input.string("regex_pattern", multiline=True),
                     Input.combo("mode", ["First Match", "All Matches", "First Group", "All Groups"]),
                     *_REGEX_FLAGS, Input.int("group_index", default=1, min=0, max=100, advanced=True)],
             outputs=[Output("STRING")]))
def regex_extract(string: str, regex_pattern: str, mode: str, case_insensitive: bool, multiline: bool,
                  dotall: bool, group_index: int) -> str:
    pattern = _compile(regex_pattern, _flags(case_insensitive, multiline, dotall))
    if mode == "First Match":
        found = _limited(regex_pattern, string, lambda: _search(pattern, string))
        return found.group(0) if found else ""
    matches = _limited(regex_pattern, string, lambda: _matches(pattern, string))
    if mode == "All Matches":
        # As ComfyUI (re.findall): a pattern with capture groups contributes each match's first group.
        whole = 1 if pattern.groups else 0
        return "\n".join(m.group(whole) or "" for m in matches)
    groups = []
    for found in matches:
        if mode == "All Groups" and not pattern.groups:
            break
        if group_index <= pattern.groups:
            groups.append(found.group(group_index) or "")
        if mode == "First Group":
            break
    return "\n".join(groups)


@node(Schema("RegexReplace", category=CATEGORY, display_name="Replace Text (Regex)",
             inputs=[Input.string("string", multiline=True), Input.string("regex_pattern", multiline=True),
                     Input.string("replace", multiline=True),
                     *(replace_flag(flag, optional=True) for flag in _REGEX_FLAGS),
                     Input.int("count", default=0, min=0, max=100, optional=True, advanced=True,
                               tooltip="0 replaces every match")],
             outputs=[Output("STRING")]))
def regex_replace(string: str, regex_pattern: str, replace: str, case_insensitive: bool = True,
                  multiline: bool = False, dotall: bool = False, count: int = 0) -> str:
    pattern = _compile(regex_pattern, _flags(case_insensitive, multiline, dotall))

    def substitute() -> str:
        try:
            return pattern.sub(replace, string, count=count, concurrent=True, timeout=REGEX_TIME_LIMIT)
        except regex.error as exc:  # a bad template (\\d, an unknown group) is the user's, like a bad pattern
            raise ValueError(f"invalid replacement {_shown(replace)} for {_shown(regex_pattern)}: {exc}") from None

    return _limited(regex_pattern, string, substitute)


NODES = {cls.__name__: cls for cls in (
    string_concatenate, string_substring, string_length, case_converter, string_trim, string_replace,
    string_contains, string_compare, regex_match, regex_extract, regex_replace)}
