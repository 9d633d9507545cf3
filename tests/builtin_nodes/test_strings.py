"""Primitive and string nodes: ComfyUI's names, inputs and results."""

from __future__ import annotations

import pytest

from tests.builtin_nodes.conftest import NODES, call


@pytest.mark.parametrize(("name", "value"), [
    ("PrimitiveInt", -7), ("PrimitiveFloat", 2.5), ("PrimitiveString", "hello"),
    ("PrimitiveStringMultiline", "a\nb"), ("PrimitiveBoolean", True),
])
def test_primitive_returns_its_value(name: str, value: object) -> None:
    assert call(name, value=value) == (value,)


def test_primitive_int_has_a_control_after_generate_widget() -> None:
    spec = NODES["PrimitiveInt"].INPUT_TYPES()["required"]["value"]
    assert spec[0] == "INT" and spec[1]["control_after_generate"] == "fixed"  # ComfyUI's ControlAfterGenerate.fixed


def test_concatenate_joins_with_the_delimiter() -> None:
    assert call("StringConcatenate", string_a="ab", string_b="cd", delimiter=", ") == ("ab, cd",)
    assert call("StringConcatenate", string_a="ab", string_b="cd", delimiter="") == ("abcd",)


@pytest.mark.parametrize(("start", "end", "expected"), [(1, 4, "ell"), (-3, 100, "llo"), (3, 1, "")])
def test_substring_slices_like_python(start: int, end: int, expected: str) -> None:
    assert call("StringSubstring", string="hello", start=start, end=end) == (expected,)


def test_length_counts_characters() -> None:
    assert call("StringLength", string="héllo\n") == (6,)
    assert NODES["StringLength"].RETURN_NAMES == ("length",)


@pytest.mark.parametrize(("mode", "expected"), [
    ("UPPERCASE", "HELLO WORLD"), ("lowercase", "hello world"), ("Capitalize", "Hello world"),
    ("Title Case", "Hello World"),
])
def test_case_converter(mode: str, expected: str) -> None:
    assert call("CaseConverter", string="hello wORLD", mode=mode) == (expected,)


@pytest.mark.parametrize(("mode", "expected"), [("Both", "x y"), ("Left", "x y \n"), ("Right", "\t x y")])
def test_trim(mode: str, expected: str) -> None:
    assert call("StringTrim", string="\t x y \n", mode=mode) == (expected,)


def test_replace_replaces_every_occurrence() -> None:
    assert call("StringReplace", string="a.b.c", find=".", replace="::") == ("a::b::c",)


def test_contains_respects_case_sensitivity() -> None:
    assert call("StringContains", string="Hello", substring="ell", case_sensitive=True) == (True,)
    assert call("StringContains", string="Hello", substring="HELL", case_sensitive=True) == (False,)
    assert call("StringContains", string="Hello", substring="HELL", case_sensitive=False) == (True,)
    assert NODES["StringContains"].RETURN_NAMES == ("contains",)


@pytest.mark.parametrize(("mode", "b", "sensitive", "expected"), [
    ("Starts With", "Hel", True, True), ("Starts With", "hel", True, False), ("Starts With", "hel", False, True),
    ("Ends With", "LO", False, True), ("Ends With", "ell", True, False),
    ("Equal", "Hello", True, True), ("Equal", "hello", True, False), ("Equal", "hello", False, True),
])
def test_compare(mode: str, b: str, sensitive: bool, expected: bool) -> None:
    assert call("StringCompare", string_a="Hello", string_b=b, mode=mode, case_sensitive=sensitive) == (expected,)


FLAGS = {"case_insensitive": False, "multiline": False, "dotall": False}


def test_regex_match_flags() -> None:
    assert call("RegexMatch", string="Hello", regex_pattern="^h", **FLAGS) == (False,)
    assert call("RegexMatch", string="Hello", regex_pattern="^h", **{**FLAGS, "case_insensitive": True}) == (True,)
    assert call("RegexMatch", string="a\nb", regex_pattern="^b$", **FLAGS) == (False,)
    assert call("RegexMatch", string="a\nb", regex_pattern="^b$", **{**FLAGS, "multiline": True}) == (True,)
    assert call("RegexMatch", string="a\nb", regex_pattern="a.b", **FLAGS) == (False,)
    assert call("RegexMatch", string="a\nb", regex_pattern="a.b", **{**FLAGS, "dotall": True}) == (True,)


def test_regex_match_defaults_to_case_insensitive_as_comfyui() -> None:
    required = NODES["RegexMatch"].INPUT_TYPES()["required"]
    assert required["case_insensitive"][1]["default"] is True
    assert required["multiline"][1]["default"] is False


def test_invalid_regex_is_an_error_naming_the_pattern() -> None:
    with pytest.raises(ValueError, match=r"invalid regular expression '\(unclosed'"):
        call("RegexMatch", string="x", regex_pattern="(unclosed", **FLAGS)


TEXT = "w=12 h=34 w=56"


@pytest.mark.parametrize(("mode", "pattern", "group", "expected"), [
    ("First Match", r"\d+", 1, "12"),
    ("First Match", r"zzz", 1, ""),
    ("All Matches", r"\d+", 1, "12\n34\n56"),
    # As ComfyUI (re.findall): with capture groups, each match contributes its first group.
    ("All Matches", r"w=(\d)(\d)", 1, "1\n5"),
    ("First Group", r"w=(\d+)", 1, "12"),
    ("First Group", r"w=(\d+)", 0, "w=12"),
    ("First Group", r"w=(\d+)", 2, ""),
    ("All Groups", r"(\w)=(\d+)", 2, "12\n34\n56"),
    ("All Groups", r"(\w)=(\d+)", 1, "w\nh\nw"),
    ("All Groups", r"\d+", 0, ""),
])
def test_regex_extract_modes(mode: str, pattern: str, group: int, expected: str) -> None:
    result = call("RegexExtract", string=TEXT, regex_pattern=pattern, mode=mode, group_index=group, **FLAGS)
    assert result == (expected,)


def test_regex_extract_optional_group_that_did_not_take_part_is_empty() -> None:
    result = call("RegexExtract", string="ab", regex_pattern=r"a(x)?", mode="First Group", group_index=1, **FLAGS)
    assert result == ("",)


def test_regex_replace_with_count_and_backreferences() -> None:
    assert call("RegexReplace", string="a1b22c333", regex_pattern=r"(\d+)", replace=r"<\1>", count=0,
                **FLAGS) == ("a<1>b<22>c<333>",)
    assert call("RegexReplace", string="a1b22c333", regex_pattern=r"\d+", replace="#", count=2,
                **FLAGS) == ("a#b#c333",)
    assert call("RegexReplace", string="ABC", regex_pattern="b", replace="-", count=0,
                **{**FLAGS, "case_insensitive": True}) == ("A-C",)


def test_regex_replace_flags_are_optional_with_comfyui_defaults() -> None:
    inputs = NODES["RegexReplace"].INPUT_TYPES()
    assert set(inputs["required"]) == {"string", "regex_pattern", "replace"}
    assert inputs["optional"]["case_insensitive"][1]["default"] is True
    assert call("RegexReplace", string="ABC", regex_pattern="b", replace="-") == ("A-C",)


def test_string_nodes_use_comfyui_category_and_names() -> None:
    names = {name: NODES[name].DISPLAY_NAME for name in ("StringConcatenate", "StringLength", "CaseConverter",
                                                          "StringTrim", "RegexMatch", "RegexExtract", "RegexReplace")}
    assert names == {"StringConcatenate": "Concatenate Text", "StringLength": "Text Length",
                     "CaseConverter": "Convert Text Case", "StringTrim": "Trim Text", "RegexMatch": "Match Text",
                     "RegexExtract": "Extract Text", "RegexReplace": "Replace Text (Regex)"}
    assert {NODES[name].CATEGORY for name in names} == {"text"}


def test_option_widgets_are_advanced_as_in_comfyui() -> None:
    extract = NODES["RegexExtract"].INPUT_TYPES()["required"]
    assert all(extract[name][1]["advanced"] is True
               for name in ("case_insensitive", "multiline", "dotall", "group_index"))
    assert NODES["StringContains"].INPUT_TYPES()["required"]["case_sensitive"][1]["advanced"] is True
    assert NODES["RegexReplace"].INPUT_TYPES()["optional"]["count"][1]["advanced"] is True
    assert "advanced" not in extract["regex_pattern"][1]
