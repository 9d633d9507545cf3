"""String nodes with ComfyUI's names and inputs: concatenate, slice, case, trim, replace, compare, regex."""

from __future__ import annotations

import re
from dataclasses import replace as replace_flag

from hearth.core.schema import Input, Output, Schema, node

CATEGORY = "utils/string"


def _flags(case_insensitive: bool, multiline: bool, dotall: bool) -> int:
    return (re.IGNORECASE if case_insensitive else 0) | (re.MULTILINE if multiline else 0) | (re.DOTALL if dotall else 0)


_REGEX_FLAGS = [Input.boolean("case_insensitive", default=True), Input.boolean("multiline", default=False),
                Input.boolean("dotall", default=False)]


@node(Schema("StringConcatenate", category=CATEGORY, display_name="Concatenate",
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


@node(Schema("StringLength", category=CATEGORY, display_name="Length",
             inputs=[Input.string("string", multiline=True)], outputs=[Output("INT", "length")]))
def string_length(string: str) -> int:
    return len(string)


@node(Schema("CaseConverter", category=CATEGORY, display_name="Case Converter",
             inputs=[Input.string("string", multiline=True),
                     Input.combo("mode", ["UPPERCASE", "lowercase", "Capitalize", "Title Case"])],
             outputs=[Output("STRING")]))
def case_converter(string: str, mode: str) -> str:
    convert = {"UPPERCASE": str.upper, "lowercase": str.lower, "Capitalize": str.capitalize, "Title Case": str.title}
    return convert[mode](string)


@node(Schema("StringTrim", category=CATEGORY, display_name="Trim",
             inputs=[Input.string("string", multiline=True), Input.combo("mode", ["Both", "Left", "Right"])],
             outputs=[Output("STRING")]))
def string_trim(string: str, mode: str) -> str:
    return {"Both": str.strip, "Left": str.lstrip, "Right": str.rstrip}[mode](string)


@node(Schema("StringReplace", category=CATEGORY, display_name="Replace",
             inputs=[Input.string("string", multiline=True), Input.string("find", multiline=True),
                     Input.string("replace", multiline=True)],
             outputs=[Output("STRING")]))
def string_replace(string: str, find: str, replace: str) -> str:
    return string.replace(find, replace)


@node(Schema("StringContains", category=CATEGORY, display_name="Contains",
             inputs=[Input.string("string", multiline=True), Input.string("substring", multiline=True),
                     Input.boolean("case_sensitive", default=True)],
             outputs=[Output("BOOLEAN", "contains")]))
def string_contains(string: str, substring: str, case_sensitive: bool) -> bool:
    return substring in string if case_sensitive else substring.lower() in string.lower()


@node(Schema("StringCompare", category=CATEGORY, display_name="Compare",
             inputs=[Input.string("string_a", multiline=True), Input.string("string_b", multiline=True),
                     Input.combo("mode", ["Starts With", "Ends With", "Equal"]),
                     Input.boolean("case_sensitive", default=True)],
             outputs=[Output("BOOLEAN")]))
def string_compare(string_a: str, string_b: str, mode: str, case_sensitive: bool) -> bool:
    if not case_sensitive:
        string_a, string_b = string_a.lower(), string_b.lower()
    return {"Starts With": string_a.startswith, "Ends With": string_a.endswith,
            "Equal": string_a.__eq__}[mode](string_b)


def _compile(pattern: str, flags: int) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


@node(Schema("RegexMatch", category=CATEGORY, display_name="Regex Match",
             inputs=[Input.string("string", multiline=True), Input.string("regex_pattern", multiline=True),
                     *_REGEX_FLAGS],
             outputs=[Output("BOOLEAN", "matches")]))
def regex_match(string: str, regex_pattern: str, case_insensitive: bool, multiline: bool, dotall: bool) -> bool:
    return _compile(regex_pattern, _flags(case_insensitive, multiline, dotall)).search(string) is not None


@node(Schema("RegexExtract", category=CATEGORY, display_name="Regex Extract",
             inputs=[Input.string("string", multiline=True), Input.string("regex_pattern", multiline=True),
                     Input.combo("mode", ["First Match", "All Matches", "First Group", "All Groups"]),
                     *_REGEX_FLAGS, Input.int("group_index", default=1, min=0, max=100)],
             outputs=[Output("STRING")]))
def regex_extract(string: str, regex_pattern: str, mode: str, case_insensitive: bool, multiline: bool,
                  dotall: bool, group_index: int) -> str:
    pattern = _compile(regex_pattern, _flags(case_insensitive, multiline, dotall))
    if mode == "First Match":
        found = pattern.search(string)
        return found.group(0) if found else ""
    if mode == "All Matches":
        # As ComfyUI (re.findall): a pattern with capture groups contributes each match's first group.
        whole = 1 if pattern.groups else 0
        return "\n".join(m.group(whole) or "" for m in pattern.finditer(string))
    groups = []
    for found in pattern.finditer(string):
        if mode == "All Groups" and not pattern.groups:
            break
        if group_index <= pattern.groups:
            groups.append(found.group(group_index) or "")
        if mode == "First Group":
            break
    return "\n".join(groups)


@node(Schema("RegexReplace", category=CATEGORY, display_name="Regex Replace",
             inputs=[Input.string("string", multiline=True), Input.string("regex_pattern", multiline=True),
                     Input.string("replace", multiline=True),
                     *(replace_flag(flag, optional=True) for flag in _REGEX_FLAGS),
                     Input.int("count", default=0, min=0, max=100, optional=True,
                               tooltip="0 replaces every match")],
             outputs=[Output("STRING")]))
def regex_replace(string: str, regex_pattern: str, replace: str, case_insensitive: bool = True,
                  multiline: bool = False, dotall: bool = False, count: int = 0) -> str:
    return _compile(regex_pattern, _flags(case_insensitive, multiline, dotall)).sub(replace, string, count=count)


NODES = {cls.__name__: cls for cls in (
    string_concatenate, string_substring, string_length, case_converter, string_trim, string_replace,
    string_contains, string_compare, regex_match, regex_extract, regex_replace)}
