"""Plugin loading: tiers, allow and deny lists, entry points, broken plugins, name clashes, ComfyUI-format packs."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hearth.core.executor import Executor
from hearth.core.plugins import PluginManager

CUSTOM_NODES = Path(__file__).resolve().parents[1] / "fixtures" / "custom_nodes"


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install fake distributions (a module plus a .dist-info with entry points) onto sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(name: str, version: str, entry_points: str, module: str | None = None, source: str = "") -> None:
        info = tmp_path / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
        if module:
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            created.append(module)

    yield make
    for module in created:
        sys.modules.pop(module, None)


GOOD_PLUGIN = """
    from hearth.core.hookspecs import hookimpl

    class Hello:
        RETURN_TYPES = ("STRING",)
        FUNCTION = "run"
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}
        def run(self):
            return ("hello",)

    @hookimpl
    def register_nodes():
        return {"Hello": Hello}
"""


def test_tiers_of_a_plain_load() -> None:
    pm = PluginManager().load(environ={}, entry_points=False)
    assert pm.records["executor"].tier == "essential"
    assert pm.records["builtin_nodes"].tier == "default"
    assert "SaveImage" in pm.nodes()


def test_entry_point_plugin_loads_with_its_version(dist: Any) -> None:
    dist("hello-pack", "1.2.3", "[hearth]\nhello = hello_plugin\n", "hello_plugin", GOOD_PLUGIN)
    pm = PluginManager().load(environ={})
    record = pm.records["hello"]
    assert (record.tier, record.version, record.error) == ("installed", "1.2.3", None)
    assert pm.nodes()["Hello"].plugin == "hello"
    assert record.node_count == 1


def test_plugin_that_fails_to_import_is_reported_and_the_rest_load(dist: Any) -> None:
    dist("bad-pack", "0.1.0", "[hearth]\nbad = bad_plugin\n", "bad_plugin", "raise ImportError('needs libfoo')\n")
    dist("hello-pack", "1.0.0", "[hearth]\nhello = hello_plugin\n", "hello_plugin", GOOD_PLUGIN)
    pm = PluginManager().load(environ={})
    assert pm.records["bad"].error == "failed to import: ImportError: needs libfoo"
    assert "raise ImportError('needs libfoo')" in pm.records["bad"].traceback
    assert "Hello" in pm.nodes()


def test_misspelled_hook_fails_that_plugin_with_a_suggestion(dist: Any) -> None:
    source = "from hearth.core.hookspecs import hookimpl\n\n@hookimpl\ndef register_node():\n    return {}\n"
    dist("typo-pack", "0.1.0", "[hearth]\ntypo = typo_plugin\n", "typo_plugin", source)
    pm = PluginManager().load(environ={})
    assert pm.records["typo"].error == "implements unknown hook 'register_node' (did you mean 'register_nodes'?)"
    assert pm.pm.get_plugin("typo") is None


def test_hook_with_an_argument_the_spec_lacks_is_rejected(dist: Any) -> None:
    source = "from hearth.core.hookspecs import hookimpl\n\n@hookimpl\ndef register_nodes(registry):\n    return {}\n"
    dist("args-pack", "0.1.0", "[hearth]\nargs = args_plugin\n", "args_plugin", source)
    pm = PluginManager().load(environ={})
    assert "invalid hook implementation" in pm.records["args"].error
    assert "registry" in pm.records["args"].error


def test_allow_list_and_disable_list(dist: Any) -> None:
    dist("hello-pack", "1.0.0", "[hearth]\nhello = hello_plugin\n", "hello_plugin", GOOD_PLUGIN)
    only = PluginManager().load(environ={"HEARTH_PLUGINS": "hello"})
    assert set(only.records) == {"executor", "hello"}
    assert list(only.nodes()) == ["Hello"]
    without = PluginManager().load(environ={"HEARTH_DISABLE_PLUGINS": "builtin_nodes, hello"})
    assert "hello" not in without.records and "builtin_nodes" not in without.records
    assert "Hello" not in without.nodes() and "SaveImage" not in without.nodes()
    assert all(definition.plugin not in ("hello", "builtin_nodes") for definition in without.nodes().values())


def test_essential_plugin_cannot_be_disabled() -> None:
    pm = PluginManager().load(environ={"HEARTH_DISABLE_PLUGINS": "executor"}, entry_points=False)
    assert "executor" in pm.records
    assert "INT" in pm.nodes().types
    assert "plugin 'executor' is essential and cannot be disabled" in pm.warnings


def test_register_nodes_that_raises_is_reported() -> None:
    from hearth.core.hookspecs import hookimpl

    class Exploding:
        @hookimpl
        def register_nodes(self) -> dict[str, type]:
            raise RuntimeError("INPUT_TYPES scan failed")

    pm = PluginManager().load(environ={}, entry_points=False)
    pm.register(Exploding(), "exploding")
    assert "SaveImage" in pm.nodes()
    assert pm.records["exploding"].error == "register_nodes raised RuntimeError: INPUT_TYPES scan failed"


@pytest.fixture(scope="module")
def packs() -> PluginManager:
    return PluginManager().load(environ={}, entry_points=False, custom_nodes=[CUSTOM_NODES])


class TestCustomNodes:
    @pytest.fixture
    def pm(self, packs: PluginManager) -> PluginManager:
        return packs

    def test_every_pack_is_a_plugin_of_the_installed_tier(self, pm: PluginManager) -> None:
        packs = {name: r for name, r in pm.records.items() if r.kind == "comfyui"}
        assert sorted(packs) == ["broken_pack", "clash_pack", "empty_pack", "good_pack", "single_file_pack"]
        assert all(r.tier == "installed" for r in packs.values())
        assert pm.records["good_pack"].version == "1.0.2"

    def test_broken_pack_is_reported_with_its_traceback(self, pm: PluginManager) -> None:
        record = pm.records["broken_pack"]
        assert record.error == "failed to import: ModuleNotFoundError: No module named 'a_library_that_is_not_installed'"
        assert "broken_pack/__init__.py" in record.traceback

    def test_pack_without_mappings_is_noted(self, pm: PluginManager) -> None:
        assert pm.records["empty_pack"].notes == ["no NODE_CLASS_MAPPINGS: the pack defines no nodes"]

    def test_nodes_display_names_and_module(self, pm: PluginManager) -> None:
        registry = pm.nodes()
        info = registry["GoodNode"].object_info()
        assert info["display_name"] == "Good Node"
        assert info["python_module"] == "custom_nodes.good_pack"
        assert registry["SingleFileNode"].plugin == "single_file_pack"
        assert pm.records["good_pack"].node_count == 2

    def test_a_pack_never_silently_replaces_a_builtin(self, pm: PluginManager) -> None:
        assert pm.nodes()["ImageInvert"].plugin == "builtin_nodes"
        assert [c.as_dict() for c in pm.collisions] == [
            {"node": "ImageInvert", "provider": "builtin_nodes", "refused": ["clash_pack"], "overridden": ""}]
        assert any("node 'ImageInvert' from plugin 'clash_pack' was refused: plugin 'builtin_nodes' already "
                   "provides it" in w and "HEARTH_ALLOW_OVERRIDE=clash_pack:ImageInvert" in w for w in pm.warnings)
        assert pm.records["clash_pack"].node_count == 0

    def test_the_user_may_allow_an_override(self) -> None:
        for allowed in ("clash_pack:ImageInvert", "clash_pack:*"):
            pm = PluginManager().load(environ={"HEARTH_ALLOW_OVERRIDE": allowed}, entry_points=False,
                                      custom_nodes=[CUSTOM_NODES])
            assert pm.nodes()["ImageInvert"].plugin == "clash_pack"
            assert [c.as_dict() for c in pm.collisions] == [{"node": "ImageInvert", "provider": "clash_pack",
                                                             "refused": ["builtin_nodes"],
                                                             "overridden": "builtin_nodes"}]
        # Leave for another pack or another node is no leave for this one.
        pm = PluginManager().load(environ={"HEARTH_ALLOW_OVERRIDE": "good_pack:ImageInvert,clash_pack:SaveImage"},
                                  entry_points=False, custom_nodes=[CUSTOM_NODES])
        assert pm.nodes()["ImageInvert"].plugin == "builtin_nodes"

    def test_web_directory(self, pm: PluginManager) -> None:
        assert pm.web_directories()["good_pack"] == (CUSTOM_NODES / "good_pack" / "web").resolve()

    def test_pack_nodes_run(self, pm: PluginManager) -> None:
        prompt = {"1": {"class_type": "GoodNode", "inputs": {"text": "hey"}},
                  "2": {"class_type": "GoodRepeat", "inputs": {"text": ["1", 0], "times": 2}}}
        result = Executor(pm.nodes()).run(prompt)
        assert result.outputs == {"2": {"text": ["hey!hey!"]}}

    def test_disable_one_pack(self) -> None:
        pm = PluginManager().load(environ={"HEARTH_DISABLE_PLUGINS": "good_pack"}, entry_points=False,
                                  custom_nodes=[CUSTOM_NODES])
        assert "good_pack" not in pm.records and "GoodNode" not in pm.nodes()
        assert "SingleFileNode" in pm.nodes()


def test_pack_named_like_a_stdlib_module_does_not_shadow_it(tmp_path: Path) -> None:
    import string

    pack = tmp_path / "string"
    pack.mkdir()
    (pack / "__init__.py").write_text("from .impl import NODE_CLASS_MAPPINGS\n")
    (pack / "impl.py").write_text(textwrap.dedent("""
        class Upper:
            RETURN_TYPES = ("STRING",)
            FUNCTION = "run"
            @classmethod
            def INPUT_TYPES(cls):
                return {"required": {"text": ("STRING",)}}
            def run(self, text):
                return (text.upper(),)

        NODE_CLASS_MAPPINGS = {"Upper": Upper}
    """))
    pm = PluginManager().load(environ={}, entry_points=False, custom_nodes=[tmp_path])
    assert pm.records["string"].error is None and "Upper" in pm.nodes()
    assert sys.modules["string"] is string and hasattr(sys.modules["string"], "ascii_letters")


def _node_class(tag: str) -> type:
    return type(f"Node{tag}", (), {"RETURN_TYPES": ("STRING",), "FUNCTION": "run", "CATEGORY": tag,
                                   "INPUT_TYPES": classmethod(lambda cls: {"required": {}}),
                                   "run": lambda self: (tag,)})


def _nodes_plugin(nodes: dict[str, type]) -> Any:
    from hearth.core.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def register_nodes(self) -> dict[str, type]:
            return nodes

    return Plugin()


def test_between_packs_the_provider_already_there_stays_and_first_party_outranks_builtins() -> None:
    pm = PluginManager().load(environ={}, entry_points=False)
    pm.register(_nodes_plugin({"SharedNode": _node_class("b")}), "b_pack", "installed")
    pm.register(_nodes_plugin({"SharedNode": _node_class("a"), "SaveImage": _node_class("a")}), "a_pack",
                "installed")
    # Hearth's own plugin (by its distribution) may replace a builtin on purpose; a stranger's may not.
    pm.register(_nodes_plugin({"PreviewImage": _node_class("sd")}), "sd", "installed", distribution="hearth-sd")
    pm.register(_nodes_plugin({"PreviewImage": _node_class("x")}), "x_pack", "installed",
                distribution="hearth-sd-extras")
    registry = pm.nodes()
    assert registry["SharedNode"].plugin == "a_pack"  # deterministic: by name among other packs
    assert registry["SaveImage"].plugin == "builtin_nodes"
    assert registry["PreviewImage"].plugin == "sd"
    clashes = {c.node: (c.provider, c.refused) for c in pm.collisions}
    assert clashes == {"SharedNode": ("a_pack", ["b_pack"]), "SaveImage": ("builtin_nodes", ["a_pack"]),
                       "PreviewImage": ("sd", ["builtin_nodes", "x_pack"])}


def test_a_web_directory_outside_the_pack_is_not_served(tmp_path: Path) -> None:
    pack = tmp_path / "escape_pack"
    pack.mkdir()
    (pack / "__init__.py").write_text('NODE_CLASS_MAPPINGS = {}\nWEB_DIRECTORY = "../../.."\n')
    (tmp_path / "inside_pack" / "web").mkdir(parents=True)
    (tmp_path / "inside_pack" / "__init__.py").write_text('NODE_CLASS_MAPPINGS = {}\nWEB_DIRECTORY = "./web"\n')
    pm = PluginManager().load(environ={}, entry_points=False, custom_nodes=[tmp_path])
    assert "escape_pack" not in pm.web_directories()
    assert any("resolves outside the pack" in n for n in pm.records["escape_pack"].notes)
    assert pm.web_directories()["inside_pack"] == (tmp_path / "inside_pack" / "web").resolve()


def test_a_folder_registered_in_extension_web_dirs_outside_every_pack_is_not_served(tmp_path: Path) -> None:
    # The older way to register a web folder names any path: one outside the packs would be served whole.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_test").write_text("secret")
    packs = tmp_path / "custom_nodes"
    (packs / "grab_pack").mkdir(parents=True)
    (packs / "grab_pack" / "js").mkdir()
    (packs / "grab_pack" / "__init__.py").write_text(
        "import os\nimport nodes\n"
        f"nodes.EXTENSION_WEB_DIRS['grab_pack'] = {str(home)!r}\n"
        "nodes.EXTENSION_WEB_DIRS['grab_js'] = os.path.join(os.path.dirname(__file__), 'js')\n"
        "NODE_CLASS_MAPPINGS = {}\n")
    pm = PluginManager().load(environ={}, entry_points=False, custom_nodes=[packs])
    assert "grab_pack" not in pm.web_directories()
    assert pm.web_directories()["grab_js"] == (packs / "grab_pack" / "js").resolve()
    assert any("EXTENSION_WEB_DIRS" in n and "outside the pack" in n for n in pm.records["grab_pack"].notes)
