"""prestartup_script.py: every pack's runs before the first pack loads; one that fails is reported on its pack."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from hearth.core.context import Folders
from hearth.core.executor import Executor
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime

PACKS = Path(__file__).parent / "packs"


@pytest.fixture
def models(tmp_path: Path) -> Iterator[Callable[[Path], PluginManager]]:
    """``load(custom_nodes_folder)``: its packs loaded in a Runtime on ``tmp_path/models``, current for the test."""
    with ExitStack() as stack:

        def load(folder: Path) -> PluginManager:
            runtime = Runtime.build(environ={}, custom_nodes=[folder], models_dir=tmp_path / "models")
            stack.enter_context(runtime.activate())
            return runtime.plugins

        yield load


def test_prestartup_registered_folder_is_seen_by_the_pack(models: Any, tmp_path: Path) -> None:
    pm = models(PACKS)
    record = pm.records["prestartup_pack"]
    assert record.error is None and not record.notes, (record.error, record.notes)
    style = pm.nodes()["PrestartupStyle"]
    assert style.cls.INPUT_TYPES()["required"]["style"][0] == ["cold.txt", "warm.txt"]
    executor = Executor(pm.nodes(), folders=Folders(tmp_path / "out", tmp_path / "in", tmp_path / "temp"))
    result = executor.run({"1": {"class_type": "PrestartupStyle", "inputs": {"style": "warm.txt"}}})
    assert result.ok, result.error
    assert result.outputs["1"]["text"] == ["warm light, golden hour"]


def test_prestartup_runs_before_packs_that_load_earlier_and_a_failure_stays_with_its_pack(
        models: Any, tmp_path: Path) -> None:
    folder = tmp_path / "custom_nodes"
    shutil.copytree(PACKS / "prestartup_pack", folder / "prestartup_pack")
    # "aaa_reader" loads first in name order, yet sees what prestartup_pack's script registered.
    (folder / "aaa_reader").mkdir()
    (folder / "aaa_reader" / "__init__.py").write_text(
        "import folder_paths\n"
        "STYLES = folder_paths.get_filename_list('prestartup_styles')\n"
        "class ReaderStyles:\n"
        "    @classmethod\n"
        "    def INPUT_TYPES(cls):\n"
        "        return {'required': {'style': (STYLES,)}}\n"
        "    RETURN_TYPES = ('STRING',)\n"
        "    FUNCTION = 'pick'\n"
        "    def pick(self, style):\n"
        "        return (style,)\n"
        "NODE_CLASS_MAPPINGS = {'ReaderStyles': ReaderStyles}\n")
    (folder / "broken_start").mkdir()
    (folder / "broken_start" / "prestartup_script.py").write_text("raise RuntimeError('no GPU driver found')\n")
    (folder / "broken_start" / "__init__.py").write_text(
        "class StillLoads:\n"
        "    @classmethod\n"
        "    def INPUT_TYPES(cls):\n"
        "        return {'required': {}}\n"
        "    RETURN_TYPES = ()\n"
        "    FUNCTION = 'run'\n"
        "    def run(self):\n"
        "        return ()\n"
        "NODE_CLASS_MAPPINGS = {'StillLoads': StillLoads}\n")
    (folder / "skipped.disabled").mkdir()
    (folder / "skipped.disabled" / "prestartup_script.py").write_text("raise SystemExit('must not run')\n")
    (folder / "skipped.disabled" / "__init__.py").write_text("")

    pm = models(folder)
    assert pm.records["aaa_reader"].error is None, pm.records["aaa_reader"].traceback
    assert pm.nodes()["ReaderStyles"].cls.INPUT_TYPES()["required"]["style"][0] == ["cold.txt", "warm.txt"]
    broken = pm.records["broken_start"]
    assert broken.error is None and "StillLoads" in pm.nodes()
    assert broken.notes == ["prestartup_script.py failed: RuntimeError: no GPU driver found"]
    assert not pm.records["prestartup_pack"].notes
    assert "skipped" not in pm.records


def test_comfy_plugins_shows_a_failed_prestartup_script_on_its_pack(models: Any, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from hearth.cli.main import cli

    folder = tmp_path / "custom_nodes"
    (folder / "broken_start").mkdir(parents=True)
    (folder / "broken_start" / "prestartup_script.py").write_text("raise RuntimeError('no [GPU] driver found')\n")
    (folder / "broken_start" / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    monkeypatch.setenv("HEARTH_DISABLE_PLUGINS", "sd,samplers,lora,video,dit,upscale,audio")
    result = CliRunner().invoke(cli, ["plugins", "--custom-nodes", str(folder)], terminal_width=200)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note: broken_start:")]
    assert notes[0] == "note: broken_start: prestartup_script.py failed: RuntimeError: no [GPU] driver found"
