"""``comfy nodes`` and ``comfy plugins``: what the loaded plugins provide, as tables and as JSON."""

from __future__ import annotations

import json
from typing import Any

from hearth.core.models.loader_nodes import NODES as LOADER_NODES
from hearth.core.nodes import collect_nodes

BUILTIN = sorted(collect_nodes("hearth.core.builtin_nodes", prefix=""))
CORE = sorted([*BUILTIN, *LOADER_NODES])  # the core's two default plugins: builtin nodes and generic model loaders
KEYS = {"input", "input_order", "output", "output_is_list", "output_name", "name", "display_name", "description",
        "python_module", "category", "output_node"}


def test_nodes_json_has_the_object_info_shape(comfy: Any) -> None:
    out = comfy("nodes", "--json")
    assert out.exit_code == 0, out.stderr_lines
    info = json.loads(out.stdout)
    assert sorted(info) == CORE
    for name, entry in info.items():
        assert KEYS <= set(entry) <= KEYS | {"output_tooltips", "deprecated", "experimental"}, name
        assert entry["name"] == name
        assert set(entry["input"]) <= {"required", "optional", "hidden"} and "required" in entry["input"]
        for section, names in entry["input_order"].items():
            assert names == list(entry["input"][section]), (name, section)
        assert len(entry["output"]) == len(entry["output_is_list"]) == len(entry["output_name"]), name
        assert isinstance(entry["output_node"], bool)


def test_nodes_json_entries(comfy: Any) -> None:
    info = json.loads(comfy("nodes", "--json").stdout)
    assert info["SaveImage"] == {
        "input": {"required": {"images": ["IMAGE", {"tooltip": "The images to save."}],
                               "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
                  "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}},
        "input_order": {"required": ["images", "filename_prefix"], "hidden": ["prompt", "extra_pnginfo"]},
        "output": [], "output_is_list": [], "output_name": [], "name": "SaveImage", "display_name": "Save Image",
        "description": "Saves the input images to your output folder.",
        "python_module": "hearth.core.builtin_nodes.image_io", "category": "image", "output_node": True,
    }
    load = info["LoadImage"]
    assert load["output"] == ["IMAGE", "MASK"] and load["output_node"] is False
    assert load["input"]["required"]["image"] == [[], {"image_upload": True}]  # the empty input folder
    regex = info["RegexExtract"]
    assert regex["display_name"] == "Extract Text" and regex["category"] == "text"  # ComfyUI's current names
    assert regex["input"]["required"]["mode"][0] == ["First Match", "All Matches", "First Group", "All Groups"]
    assert info["StringLength"]["output_name"] == ["length"]
    assert info["MathExpression"]["output"] == ["FLOAT", "INT"]


def test_nodes_lists_files_of_the_input_folder(comfy: Any, workdir: Any) -> None:
    (workdir / "input").mkdir()
    (workdir / "input" / "cat.png").write_bytes(b"")
    info = json.loads(comfy("nodes", "--json").stdout)
    # The input folder is ./input, as for `comfy run`.
    assert info["LoadImage"]["input"]["required"]["image"][0] == ["cat.png"]


def test_nodes_table_keeps_names_whole(comfy: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # what rich assumes when stdout is a pipe
    out = comfy("nodes")
    assert out.exit_code == 0
    rows = [line for line in out.stdout.splitlines() if line.startswith("│ ") and not line.startswith("│  ")]
    assert sorted(row.split("│")[1].strip() for row in rows) == CORE


def test_plugins_json(comfy: Any) -> None:
    out = comfy("plugins", "--json")
    assert out.exit_code == 0
    data = json.loads(out.stdout)
    assert set(data) == {"plugins", "collisions", "warnings", "isolation", "pack_hosts"} and data["collisions"] == []
    records = {r["name"]: r for r in data["plugins"]}
    assert "sd" not in records  # disabled by HEARTH_DISABLE_PLUGINS in these tests
    assert records["executor"]["tier"] == "essential" and records["executor"]["error"] is None
    builtin = records["builtin_nodes"]
    assert builtin["tier"] == "default" and builtin["node_count"] == len(BUILTIN) and builtin["error"] is None
    assert {"name", "version", "tier", "kind", "node_count", "error"} <= set(builtin)
    loaders = records["model_loaders"]
    assert loaders["tier"] == "default" and loaders["node_count"] == len(LOADER_NODES) and loaders["error"] is None
    tiers = [r["tier"] for r in data["plugins"]]
    assert tiers == sorted(tiers, key=["essential", "default", "installed"].index)


def test_plugins_table(comfy: Any) -> None:
    out = comfy("plugins")
    assert out.exit_code == 0
    assert "builtin_nodes" in out.stdout and "essential" in out.stdout


def test_plugins_reports_a_broken_custom_node_pack(comfy: Any, workdir: Any) -> None:
    pack = workdir / "custom_nodes" / "broken_pack"
    pack.mkdir(parents=True)
    (pack / "__init__.py").write_text("raise ImportError('needs a library that is not installed')\n")
    out = comfy("plugins", "--json")
    assert out.exit_code == 0
    records = {r["name"]: r for r in json.loads(out.stdout)["plugins"]}
    broken = [r for name, r in records.items() if "broken_pack" in name]
    assert len(broken) == 1 and "needs a library that is not installed" in broken[0]["error"]


SAVE_IMAGE_PACK = """
class SaveImage:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "steal"
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}
    def steal(self, images):
        return ()

NODE_CLASS_MAPPINGS = {"SaveImage": SaveImage}
"""


def test_plugins_lists_a_pack_refused_a_builtin_node_name(comfy: Any, workdir: Any, monkeypatch: Any) -> None:
    pack = workdir / "custom_nodes" / "sneaky_pack"
    pack.mkdir(parents=True)
    (pack / "__init__.py").write_text(SAVE_IMAGE_PACK)
    data = json.loads(comfy("plugins", "--json").stdout)
    assert data["collisions"] == [{"node": "SaveImage", "provider": "builtin_nodes", "refused": ["sneaky_pack"],
                                   "overridden": ""}]
    info = json.loads(comfy("nodes", "--json").stdout)
    assert info["SaveImage"]["python_module"] == "hearth.core.builtin_nodes.image_io"  # the builtin stays
    monkeypatch.setenv("COLUMNS", "200")
    table = comfy("plugins").stdout
    assert "node name collisions" in table and "SaveImage" in table and "sneaky_pack" in table
    assert "HEARTH_ALLOW_OVERRIDE=sneaky_pack:SaveImage" in " ".join(table.split())

    monkeypatch.setenv("HEARTH_ALLOW_OVERRIDE", "sneaky_pack:SaveImage")
    data = json.loads(comfy("plugins", "--json").stdout)
    assert data["collisions"] == [{"node": "SaveImage", "provider": "sneaky_pack", "refused": ["builtin_nodes"],
                                   "overridden": "builtin_nodes"}]
    assert json.loads(comfy("nodes", "--json").stdout)["SaveImage"]["python_module"] == "custom_nodes.sneaky_pack"


def test_custom_nodes_option_must_be_a_folder(comfy: Any) -> None:
    out = comfy("nodes", "--custom-nodes", "nowhere")
    assert out.exit_code == 2
    assert len(out.stderr_lines) == 1 and "nowhere" in out.stderr_lines[0]
