"""custom_nodes_for_folders: the plugin that loads ComfyUI-format packs gets the custom-node folders; without one,
a folder given to Hearth is reported as needing hearth-comfy-compat, never silently ignored."""

from __future__ import annotations

from pathlib import Path

from hearth.core.hookspecs import hookimpl
from hearth.core.plugins import CUSTOM_NODES_PLUGIN, PluginManager, PluginRecord


class Shout:
    CATEGORY = "toy"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802 - ComfyUI's name
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        return (text.upper(),)


class ToyPacks:
    """Treats every ``*.txt`` file in a folder as a pack holding one node."""

    def __init__(self, folders, wanted):
        self.web_directories = {}
        self.records = [PluginRecord(p.stem, "installed", kind="comfyui", module=str(p))
                        for folder in folders for p in sorted(folder.glob("*.txt")) if wanted(p.stem)]

    def missing_internals(self):
        return {record.name: ["comfy.utils.magic"] for record in self.records}

    @hookimpl
    def register_nodes(self):
        return {f"Shout_{record.name}": Shout for record in self.records}


class ToyLoader:
    def __init__(self):
        self.calls = []

    @hookimpl
    def custom_nodes_for_folders(self, folders, wanted, plugins):
        self.calls.append((list(folders), plugins))
        return ToyPacks(folders, wanted)


def test_hook_custom_nodes_for_folders(tmp_path: Path) -> None:
    (tmp_path / "alpha.txt").write_text("")
    (tmp_path / "beta.txt").write_text("")
    loader = ToyLoader()
    manager = PluginManager()
    manager.register(loader, "toy-loader")
    # comfy_compat is left out so that the toy plugin is the one answering.
    manager.load(environ={}, entry_points=False, disable=["comfy_compat", "beta"], custom_nodes=[tmp_path])
    assert loader.calls == [([tmp_path], manager)]
    assert manager.records["alpha"].kind == "comfyui" and "beta" not in manager.records
    assert manager.records[CUSTOM_NODES_PLUGIN].tier == "default"
    assert "Shout_alpha" in manager.nodes() and "Shout_beta" not in manager.nodes()
    assert manager.missing_internals() == {"alpha": ["comfy.utils.magic"]}


def test_custom_nodes_without_a_loader_are_reported(tmp_path: Path) -> None:
    (tmp_path / "pack.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    manager = PluginManager().load(environ={}, entry_points=False, disable=["comfy_compat"], custom_nodes=[tmp_path])
    record = manager.records[CUSTOM_NODES_PLUGIN]
    assert "hearth-comfy-compat" in record.error and str(tmp_path) in record.error
    assert any("need hearth-comfy-compat" in w for w in manager.warnings)
    assert "pack" not in manager.records and manager.missing_internals() == {}
    # Hearth's own nodes still load.
    assert "EmptyImage" in manager.nodes()


def test_without_custom_nodes_nothing_is_asked(tmp_path: Path) -> None:
    loader = ToyLoader()
    manager = PluginManager()
    manager.register(loader, "toy-loader")
    manager.load(environ={}, entry_points=False)
    assert loader.calls == [] and CUSTOM_NODES_PLUGIN not in manager.records
