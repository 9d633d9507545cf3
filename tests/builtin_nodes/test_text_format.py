"""StringFormat and JsonExtractString: ComfyUI's results, and hostile text (private attributes, huge widths, invalid,
deeply nested or huge JSON) refused or skipped with clear messages, quickly."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.builtin_nodes.conftest import call


def fmt(f_string: str, **values: Any) -> str:
    (text,) = call("StringFormat", f_string=f_string, **{f"values.{k}": v for k, v in values.items()})
    return text


@pytest.mark.parametrize(("f_string", "values", "expected"), [
    ("{a}", {"a": 3}, "3"),
    ("{a} at {b:.2f} ({c!r})", {"a": "cat", "b": 1 / 3, "c": "x"}, "cat at 0.33 ('x')"),
    ("{a[1]} {b[k]} {{literal}}", {"a": [1, 2], "b": {"k": "v"}}, "2 v {literal}"),
    ("{a:>6}|{b:,}", {"a": "r", "b": 1234567}, "     r|1,234,567"),
    ("{a.real}", {"a": 5}, "5"),  # public attributes, as str.format allows
    ("no fields", {}, "no fields"),
])
def test_string_format_is_str_format(f_string: str, values: dict[str, Any], expected: str) -> None:
    assert fmt(f_string, **values) == expected == f_string.format(**values)


@pytest.mark.parametrize(("f_string", "values", "message"), [
    ("{a.__class__.__init__.__globals__}", {"a": 1}, r"reads a private attribute \('__class__'\)"),
    ("{a:>999999999}", {"a": 1}, "asks for more than 10000 characters"),
    ("{a:.{b}f}", {"a": 1.0, "b": 50000}, "asks for more than 10000 characters"),
    ("{z}", {"a": 1}, r"field \{z\} names no linked input \(linked: a\); link values.z"),
    ("{}", {"a": 1}, "positional field"),
    ("{0}", {"a": 1}, "positional field"),
    ("{a[5]}", {"a": [1]}, "cannot format .*IndexError"),
    ("{a:d}", {"a": "text"}, "cannot format"),
    ("{a", {"a": 1}, "cannot format"),
])
def test_string_format_refusals_name_the_input(f_string: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^f_string: .*{message}"):
        fmt(f_string, **values)


def test_string_format_through_the_executor(run_prompt: Any, hearth_runtime: Any) -> None:
    prompt = {"n": {"class_type": "PrimitiveInt", "inputs": {"value": 42}},
              "s": {"class_type": "PrimitiveString", "inputs": {"value": "seed"}},
              "f": {"class_type": "StringFormat", "inputs": {"f_string": "{b}={a:05d}", "values.a": ["n", 0],
                                                             "values.b": ["s", 0]}},
              "p": {"class_type": "PreviewAny", "inputs": {"source": ["f", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["p"] == {"text": ["seed=00042"]}
    info = hearth_runtime.nodes["StringFormat"].object_info()
    assert info["input_order"] == {"required": ["values", "f_string"]}
    assert info["input"]["required"]["values"][1]["template"]["min"] == 0


@pytest.mark.parametrize(("text", "key", "expected"), [
    ('{"prompt": "a cat", "n": 2}', "prompt", "a cat"),
    ('{"prompt": "a cat", "n": 2}', "n", "2"),
    ('{"prompt": null}', "prompt", ""),
    ('{"prompt": "x"}', "missing", ""),
    ('Here you go:\n```json\n{"music": "jazz"}\n```', "music", "jazz"),  # inside prose and a code block
    ('{broken {"a": 1}', "a", "1"),  # the first { that starts valid JSON
    ('{"a": {"b": [1, 2]}}', "a", "{'b': [1, 2]}"),  # str() of the value, as ComfyUI
    ('{"a": true}', "a", "True"),
    ("no json here", "a", ""),
    ("", "a", ""),
    ('[{"a": 1}]', "a", "1"),  # a top-level array is skipped; the object inside is found
])
def test_json_extract_string(text: str, key: str, expected: str) -> None:
    assert call("JsonExtractString", json_string=text, key=key) == (expected,)


def test_json_extract_skips_what_it_cannot_read() -> None:
    # Nested past the parser's depth: the outer starts are skipped, the first one shallow enough is read.
    deep = '{"a": ' * 3000 + "1" + "}" * 3000
    huge_int = '{"a": ' + "9" * 5000 + '} {"a": "next"}'  # past Python's 4300-digit int limit
    start = time.monotonic()
    assert call("JsonExtractString", json_string=deep, key="a")[0].startswith("{'a': {'a': {'a'")
    assert call("JsonExtractString", json_string=huge_int, key="a") == ("next",)
    assert time.monotonic() - start < 2


def test_json_extract_gives_up_on_text_that_defeats_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from hearth.core.builtin_nodes import text_format

    monkeypatch.setattr(text_format, "JSON_TIME_LIMIT", 0.05)
    # Every { starts an object that parses a long way before failing: quadratic without a limit.
    hostile = ('{"k": [' + "1, " * 20_000) * 200
    start = time.monotonic()
    with pytest.raises(ValueError, match="json_string: no JSON object found within 0.05 s"):
        call("JsonExtractString", json_string=hostile, key="k")
    assert time.monotonic() - start < 2


def test_json_extract_through_the_executor(run_prompt: Any) -> None:
    prompt = {"t": {"class_type": "PrimitiveStringMultiline",
                    "inputs": {"value": json.dumps({"Music": "upbeat", "SFX": "rain"})}},
              "j": {"class_type": "JsonExtractString", "inputs": {"json_string": ["t", 0], "key": "SFX"}},
              "p": {"class_type": "PreviewAny", "inputs": {"source": ["j", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["p"] == {"text": ["rain"]}


@pytest.mark.parametrize(("node", "name", "value", "indent", "expected"), [
    ("ConvertDictionaryToString", "dictionary", {"b": 1, "é": [1, 2]}, 0, '{"b": 1, "é": [1, 2]}'),
    ("ConvertDictionaryToString", "dictionary", {"a": 1}, 2, '{\n  "a": 1\n}'),
    ("ConvertArrayToString", "array", [1, "x"], 1, '[\n 1,\n "x"\n]'),
])
def test_convert_to_string(node: str, name: str, value: Any, indent: int, expected: str) -> None:
    assert call(node, **{name: value}, indent=indent) == (expected,)


def test_convert_to_string_names_what_is_not_json() -> None:
    with pytest.raises(ValueError, match="input 'array': cannot write a list as JSON"):
        call("ConvertArrayToString", array=[object()], indent=2)
