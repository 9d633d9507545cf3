"""The import rules of docs/architecture.md hold: no import crosses the rooms table, and the checker catches one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.harness.boundaries import TableError, check_tree, compare_tables, parse_rule, read_rooms

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "architecture.md"
# CI checks the clone out beside the project's shared folder; a developer's clone may not have it.
SHARED_MAP = ROOT.parent / "shared" / "ARCHITECTURE.md"


def test_no_import_crosses_the_rooms_table():
    violations = check_tree(ROOT, TABLE.read_text())
    listing = "\n".join(f"  {v}" for v in violations)
    if violations:
        pytest.fail(
            f"{len(violations)} import(s) cross the rooms table of docs/architecture.md "
            f"(move the code, reach the other room through a hook, or change the table on purpose):\n{listing}",
            pytrace=False,
        )


@pytest.mark.skipif(not SHARED_MAP.exists(), reason="../shared/ARCHITECTURE.md is not beside this clone")
def test_the_repository_table_agrees_with_the_shared_map():
    problems = compare_tables(TABLE.read_text(), SHARED_MAP.read_text())
    assert not problems, "docs/architecture.md and ARCHITECTURE.md disagree:\n" + "\n".join(problems)


def test_the_table_names_every_folder_of_the_tree():
    rooms = read_rooms(TABLE.read_text())
    folders = {f"core/{p.name}" for p in (ROOT / "hearth" / "core").iterdir() if (p / "__init__.py").exists()}
    folders |= {p.name for p in (ROOT / "hearth").iterdir() if (p / "__init__.py").exists()}
    # Sub-packages of core that the table does not name would silently count as core; list them.
    missing = {f for f in folders if f not in rooms and not f.startswith("core/")}
    unnamed_core_parts = {f for f in folders if f.startswith("core/") and f not in rooms}
    assert not missing, f"hearth packages with no row in docs/architecture.md: {sorted(missing)}"
    assert not unnamed_core_parts, (
        f"hearth/core sub-packages with no row in docs/architecture.md: {sorted(unnamed_core_parts)}; "
        "add a row, or fold them into core on purpose"
    )


def test_the_table_reads_as_the_map_says():
    rooms = read_rooms(TABLE.read_text())
    assert set(rooms) == {
        "core",
        "core/executor",
        "core/models",
        "core/builtin_nodes",
        "plugins/<name>",
        "registry",
        "registry_server",
        "sandbox",
        "cli",
        "web",
        "tests",
        "bench",
    }
    assert rooms["core"].rule.third_party == {"pluggy"} and not rooms["core"].rule.rooms
    assert rooms["core/executor"].rule.rooms == {"core"} and rooms["core/executor"].rule.deferred_only == {
        "torch"
    }
    assert rooms["core/models"].rule.third_party == {"torch", "safetensors"}
    assert rooms["core/builtin_nodes"].rule.third_party == {"pillow", "numpy"}
    plugins = rooms["plugins/<name>"]
    assert (
        plugins.rule.rooms == {"core"} and plugins.rule.public_api_only and plugins.rule.plugins_through_hooks
    )
    assert plugins.extras.own_pyproject
    assert rooms["registry"].rule.rooms == {"core"} and rooms["registry"].rule.third_party == {
        "packaging",
        "httpx",
    }
    assert rooms["registry_server"].rule.rooms == {"registry", "sandbox"}
    assert rooms["sandbox"].rule.stdlib_only and not rooms["sandbox"].rule.rooms
    assert rooms["cli"].rule.everything and rooms["cli"].rule.nothing_imports == {"cli"}
    assert rooms["web"].rule.rooms == {"core", "core/executor"}


def test_importing_the_executor_leaves_torch_unloaded():
    code = "import sys, hearth.core.executor; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", (
        "importing hearth.core.executor imported torch (no torch at import time)"
    )


# ---------------------------------------------------------------------------------------------------------------
# The test of the test: a tree with forbidden imports, each reported with its file, line and the rule broken.

BAD_FILES = {
    # core importing the CLI, at module level
    "hearth/core/bad.py": "import json\nimport hearth.cli.main\n",
    # a lazy-import table naming a plugin's module, and an entry-point string naming the web
    "hearth/core/lazy_table.py": (
        'DEFAULTS = {"alpha": "hearth_alpha.nodes", "page": "hearth.web.app:create"}\nMESSAGE = "hearth_alpha.nodes is fine in prose"\n'
    ),
    "hearth/web/app.py": "",
    # a plugin importing another plugin's package; its own package and core's public API are fine
    "plugins/alpha/hearth_alpha/__init__.py": (
        "from hearth.core.hookspecs import hookimpl\nfrom hearth_alpha import nodes\nfrom hearth_beta import thing\n"
    ),
    "plugins/alpha/hearth_alpha/nodes.py": "from . import helpers\n",
    "plugins/alpha/hearth_alpha/helpers.py": "from hearth.core.plugins import _active\n",
    "plugins/beta/hearth_beta/__init__.py": "thing = 1\n",
    # an import inside a function, and torch at import time, in the executor
    "hearth/core/executor/lazy.py": "import torch\n\n\ndef later():\n    from hearth.registry import client\n",
    # importlib and __import__ with a literal, in the sandbox
    "hearth/sandbox/sneaky.py": (
        "import importlib\n\n\ndef load():\n    importlib.import_module('hearth.core')\n    return __import__('httpx')\n"
    ),
    # the web reaching the registry through a relative import
    "hearth/web/routes/odd.py": "from ... import registry\n",
    # empty packages so relative imports resolve
    "hearth/__init__.py": "",
    "hearth/core/__init__.py": "",
    "hearth/core/executor/__init__.py": "",
    "hearth/sandbox/__init__.py": "",
    "hearth/web/__init__.py": "",
    "hearth/web/routes/__init__.py": "",
    "hearth/cli/__init__.py": "",
    "hearth/cli/main.py": "import hearth_alpha\nimport torch\n",
    "hearth/registry/__init__.py": "",
}


@pytest.fixture
def bad_tree(tmp_path):
    for name, text in BAD_FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_checker_reports_each_forbidden_import_with_file_line_and_rule(bad_tree):
    violations = check_tree(bad_tree, TABLE.read_text())
    found = {(v.path, v.line, v.target): v for v in violations}
    expected = {
        ("hearth/core/bad.py", 2): ("hearth.cli.main", "nothing imports `cli`"),
        ("plugins/alpha/hearth_alpha/__init__.py", 3): (
            "hearth_beta: thing",
            "may not import another plugin (`plugins/beta`)",
        ),
        ("plugins/alpha/hearth_alpha/helpers.py", 1): (
            "hearth.core.plugins: _active",
            "`_active` is not `core` public API",
        ),
        ("hearth/core/executor/lazy.py", 1): ("torch", "no torch at import time"),
        ("hearth/core/executor/lazy.py", 5): (
            "hearth.registry: client",
            "`core/executor` may import `core` only",
        ),
        ("hearth/sandbox/sneaky.py", 5): ("hearth.core", "`sandbox` may import stdlib only at its boundary"),
        ("hearth/sandbox/sneaky.py", 6): ("httpx", "`sandbox` may import stdlib only at its boundary"),
        ("hearth/web/routes/odd.py", 1): ("hearth: registry", "`web` may import `core`, `core/executor`"),
    }
    named = [v for v in found.values() if v.path == "hearth/core/lazy_table.py"]
    assert sorted(v.target for v in named) == ["hearth.web.app", "hearth_alpha.nodes"]
    assert all(v.line == 1 and "named in a string" in v.rule for v in named)
    for (path, line), (target, rule) in expected.items():
        assert (path, line, target) in found, (
            f"the checker missed {path}:{line} ({target}); it found {sorted(found)}"
        )
        violation = found[(path, line, target)]
        assert rule in violation.rule
        assert str(violation).startswith(f"{path}:{line}: ")
    # Nothing else: own package, relative imports inside a plugin, core's public API, stdlib, and cli importing
    # anything are all allowed.
    assert len(violations) == len(expected) + len(named)


def test_a_function_level_import_is_reported_like_a_module_level_one(tmp_path):
    for name in ["hearth/__init__.py", "hearth/core/__init__.py", "hearth/core/models/__init__.py"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "hearth/core/models/x.py").write_text(
        textwrap.dedent(
            """\
            def load():
                if True:
                    import hearth.core.executor
            """
        )
    )
    [violation] = check_tree(tmp_path, TABLE.read_text())
    assert (violation.path, violation.line, violation.room) == ("hearth/core/models/x.py", 3, "core/models")
    assert "`core/models` may import `core`, torch, safetensors" in violation.rule


def test_an_unreadable_rule_fails_loudly_naming_the_cell():
    with pytest.raises(TableError, match="cannot read 'the moon'"):
        parse_rule("`core`, the moon", "docs/architecture.md, room `x`: ")


def test_the_shared_map_comparison_reports_a_changed_rule():
    text = TABLE.read_text()
    changed = text.replace("| `hearth/web/` |", "| `hearth/webx/` |").replace(
        "| `core`, `core/executor` |", "| `core` |"
    )
    problems = compare_tables(changed, text)
    assert any("room `web` is in ARCHITECTURE.md but not in docs/architecture.md" in p for p in problems)
    assert any("room `webx`" in p for p in problems)
