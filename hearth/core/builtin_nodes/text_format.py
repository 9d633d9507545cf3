"""Text nodes of ComfyUI's ``nodes_string.py`` that format and read structured text: Format Text (``StringFormat``),
Extract Text from JSON (``JsonExtractString``), and Convert Dictionary/Array to String (JSON text of a DICT or an
ARRAY value).

Both take text a user or another node wrote, so both are bounded where ComfyUI's are not: StringFormat refuses
fields that reach into private attributes (``{a.__class__.__init__.__globals__}`` would print server internals)
and widths past :data:`MAX_FORMAT_WIDTH` (``{a:>999999999}`` builds a gigabyte string); JsonExtractString gives up
after :data:`JSON_TIME_LIMIT` seconds on text that defeats it, and skips objects nested past the parser's depth
or holding integers too long to read instead of failing on them.
"""

from __future__ import annotations

import json
import re
import string
import time
from _string import formatter_field_name_split  # the field parser str.format itself uses
from collections.abc import Mapping, Sequence
from typing import Any

from hearth.core import context
from hearth.core.builtin_nodes.dynamic_inputs import LETTERS, DynamicSection, autogrow_names, gather

MAX_FORMAT_WIDTH = 10_000
JSON_TIME_LIMIT = 2.0  # seconds; a prompt-sized text takes microseconds
_NUMBER = re.compile(r"\d+")


class _SafeFormatter(string.Formatter):
    """``str.format`` semantics for the fields users write, without private attributes or huge widths."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        first, rest = formatter_field_name_split(field_name)
        if isinstance(first, int):
            raise ValueError(f"f_string: {{{field_name}}} is a positional field; name the input instead, as {{a}}")
        for is_attribute, part in rest:
            if is_attribute and str(part).startswith("_"):
                raise ValueError(f"f_string: field {{{field_name}}} reads a private attribute ({part!r}); only "
                                 f"public attributes and items may be used")
        if isinstance(first, str) and first not in kwargs:
            linked = ", ".join(kwargs) or "none"
            raise ValueError(f"f_string: field {{{first}}} names no linked input (linked: {linked}); link "
                             f"values.{first} or change the field")
        return super().get_field(field_name, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        if any(int(n) > MAX_FORMAT_WIDTH for n in _NUMBER.findall(format_spec)):
            raise ValueError(f"f_string: format spec {format_spec!r} asks for more than {MAX_FORMAT_WIDTH} "
                             f"characters")
        return super().format_field(value, format_spec)

    def check_unused_args(self, used_args: Any, args: Any, kwargs: Any) -> None:
        return None


_FORMAT_SPEC, _FORMAT_CLAIMS = autogrow_names("values", ("value", ("*", {})), LETTERS, minimum=0, optional=False)


class StringFormat:
    """ComfyUI's Format Text: Python's ``str.format`` over the linked values ``a``..``z`` (sockets
    ``values.a``...), e.g. ``"{a} at {b:.2f}"``; positional fields (``{}``, ``{0}``) have nothing to fill."""

    DISPLAY_NAME = "Format Text"
    DESCRIPTION = "Same as Python's string format method. Supports all of Python's format options and features."
    CATEGORY = "text"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "execute"
    SEARCH_ALIASES = ["string", "format"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": DynamicSection({"values": _FORMAT_SPEC,
                                            "f_string": ("STRING", {"default": "{a}", "multiline": True})},
                                           _FORMAT_CLAIMS)}

    def execute(self, f_string: str, **inputs: Any) -> tuple[str]:
        values = gather("values", inputs, LETTERS)
        try:
            return (_SafeFormatter().vformat(f_string, (), values),)
        except (KeyError, IndexError, AttributeError, TypeError) as exc:
            raise ValueError(f"f_string: cannot format {f_string!r}: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:
            if str(exc).startswith("f_string:"):
                raise
            raise ValueError(f"f_string: cannot format {f_string!r}: {exc}") from None


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (ComfyUI's rule: try a decode at each ``{`` in turn, so an object inside
    prose or a Markdown code block is found), or None."""
    decoder = json.JSONDecoder()
    deadline = time.monotonic() + JSON_TIME_LIMIT
    position = text.find("{")
    while position != -1:
        try:
            data, _ = decoder.raw_decode(text, position)
            return data
        except (ValueError, RecursionError):  # not JSON here, nested too deep, or an integer past 4300 digits
            pass
        context.check_interrupted()
        if time.monotonic() > deadline:
            raise ValueError(f"json_string: no JSON object found within {JSON_TIME_LIMIT:g} s in "
                             f"{len(text)} characters of text; shorten the text")
        position = text.find("{", position + 1)
    return None


class JsonExtractString:
    """ComfyUI's Extract Text from JSON: the value of ``key`` in the first JSON object of the text, as text
    (``str`` of it: a nested object prints as Python's dict); empty when there is none or the key is absent."""

    DISPLAY_NAME = "Extract Text from JSON"
    DESCRIPTION = ("Extract a key's value from the first valid JSON object in the text, including Markdown code "
                   "blocks.")
    CATEGORY = "text"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "execute"
    SEARCH_ALIASES = ["json", "extract json", "parse json", "json value", "read json"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"json_string": ("STRING", {"multiline": True}),
                             "key": ("STRING", {"multiline": False})}}

    def execute(self, json_string: str, key: str) -> tuple[str]:
        data = first_json_object(json_string)
        if data is None:
            return ("",)
        value = data.get(key)
        try:
            return ("" if value is None else str(value),)
        except RecursionError:
            raise ValueError(f"key: the value of {key!r} is nested too deeply to show as text") from None


def _json_text(name: str, value: Any, indent: int) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent or None)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"input {name!r}: cannot write a {type(value).__name__} as JSON ({exc})") from None


def _to_string_node(node_id: str, display: str, kind: str, name: str, aliases: list[str]) -> type:
    def input_types(cls: type) -> dict[str, Any]:
        return {"required": {name: (kind, {}), "indent": ("INT", {
            "default": 2, "min": 0, "max": 8,
            "tooltip": "Spaces per indent level. 0 produces compact single-line string."})}}

    def execute(self: Any, indent: int = 2, **value: Any) -> tuple[str]:
        return (_json_text(name, value[name], indent),)

    return type(node_id, (), {
        "DISPLAY_NAME": display, "CATEGORY": "text", "RETURN_TYPES": ("STRING",), "FUNCTION": "execute",
        "SEARCH_ALIASES": aliases, "INPUT_TYPES": classmethod(input_types), "execute": execute,
        "__module__": __name__, "__doc__": f"ComfyUI's {display}: the {kind} as JSON text (``indent`` 0: one line)."})


ConvertDictionaryToString = _to_string_node(
    "ConvertDictionaryToString", "Convert Dictionary to String", "DICT", "dictionary",
    ["json", "dict to json", "stringify", "serialize", "dict to string"])
ConvertArrayToString = _to_string_node(
    "ConvertArrayToString", "Convert Array to String", "ARRAY", "array",
    ["json", "list to json", "stringify", "serialize", "list to string", "array to json"])

NODES = {"StringFormat": StringFormat, "JsonExtractString": JsonExtractString,
         "ConvertDictionaryToString": ConvertDictionaryToString, "ConvertArrayToString": ConvertArrayToString}
