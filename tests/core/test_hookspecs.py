"""The plugin contract is tested: every hook spec is documented, rendered into the docs, and has a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from hearth.core import hookdocs

ROOT = Path(__file__).resolve().parents[2]
SPECS = hookdocs.hook_specs()


def test_there_are_hook_specs() -> None:
    assert {"register_nodes", "register_types", "register_model_formats", "register_samplers", "register_schedulers",
            "register_routes", "on_prompt_start", "on_prompt_end", "on_node_error"} <= set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_docstring_is_a_reference(name: str) -> None:
    fn = SPECS[name]
    doc = inspect.getdoc(fn) or ""
    assert doc, f"hook {name} has no docstring"
    assert "Called" in doc, f"hook {name}'s docstring does not say when it is called"
    for param in inspect.signature(fn).parameters:
        assert f":param {param}:" in doc, f"hook {name} does not document parameter {param!r}"
    if name.startswith("register_") or name.startswith("resolve_"):
        assert ":return:" in doc, f"hook {name} does not document its return rule"
    opts = fn.hearth_spec
    if name.startswith("resolve_") or "_for_" in name:
        assert opts.get("firstresult"), f"hook {name} is named like a firstresult hook but is not one"


def test_docs_render_every_hook_from_its_docstring() -> None:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert hookdocs.section(text) == hookdocs.render(), (
        "docs/plugins.md is out of date: run `python -m hearth.core.hookdocs --write docs/plugins.md`")
    for name in SPECS:
        assert f"### `{name}(" in text


def test_every_hook_has_a_test() -> None:
    defined = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined.update(re.findall(r"^def (test_hook_\w+)\(", path.read_text(encoding="utf-8"), flags=re.M))
    missing = [name for name in SPECS if f"test_hook_{name}" not in defined]
    assert not missing, f"hooks without a test_hook_<name>: {missing}"
