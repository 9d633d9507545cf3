"""bench/template_coverage.py on a hand-written templates folder, and bench/node_classes.py on a tiny ComfyUI tree.

The coverage script runs as a user runs it (a subprocess calling the real ``comfy nodes --json``), with only the
builtin nodes loaded so the figures do not move while the model plugins grow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "template_coverage.py"
BUILDER = ROOT / "bench" / "node_classes.py"
COMFY = Path(sys.executable).with_name("comfy")


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def node(kind: str, node_id: int = 1) -> dict:
    return {"id": node_id, "type": kind, "inputs": [], "outputs": [], "widgets_values": []}


def write(folder: Path, name: str, data) -> None:
    (folder / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    # Every node present; the notes, reroute and primitive widget are drawn by the browser, not run.
    write(folder, "complete", {"nodes": [node("LoadImage"), node("ImageInvert"), node("SaveImage"),
                                         node("Note"), node("MarkdownNote"), node("Reroute"), node("PrimitiveNode")]})
    # A subgraph instance (type = a subgraph id) holding a nested subgraph whose node is missing; the subgraph
    # ids themselves are not node types. "loop" contains itself and must not recurse forever.
    write(folder, "nested", {
        "nodes": [node("LoadImage"), node("outer-0000")],
        "definitions": {"subgraphs": [
            {"id": "outer-0000", "nodes": [node("ImageInvert"), node("inner-1111"), node("loop-2222")]},
            {"id": "inner-1111", "nodes": [node("FancyCoreNode")]},
            {"id": "loop-2222", "nodes": [node("loop-2222"), node("SaveImage")]},
        ]}})
    write(folder, "cloud", {"nodes": [node("CloudImageNode"), node("FancyCoreNode"), node("SaveImage")]})
    write(folder, "family", {"nodes": [node("FamilyLoader"), node("SaveImage")]})
    write(folder, "stranger", {"nodes": [node("SomebodysPackNode")]})
    # Not workflows: the package's index (a list) and an options file (no "nodes").
    write(folder, "index", [{"moduleName": "default", "templates": []}])
    write(folder, "fuse_options", {"keys": ["title"]})
    return folder


@pytest.fixture
def classes(tmp_path: Path) -> Path:
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"nodes": {
        "FancyCoreNode": {"class": "core", "module": "comfy_extras/nodes_fancy.py"},
        "CloudImageNode": {"class": "api", "module": "comfy_api_nodes/nodes_cloud.py"},
        "FamilyLoader": {"class": "flux", "module": "comfy_extras/nodes_flux.py"},
    }}), encoding="utf-8")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEARTH_DISABLE_PLUGINS": "sd,samplers,lora,video,dit,upscale,audio,comfy_compat"}
    env.pop("HEARTH_PLUGINS", None)
    env.pop("HEARTH_CUSTOM_NODES", None)
    return subprocess.run([sys.executable, str(SCRIPT), "--comfy", str(COMFY), *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=ROOT)


def test_counts_complete_templates_and_ranks_the_missing_types(templates: Path, classes: Path) -> None:
    done = run("--templates", str(templates), "--classes", str(classes), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["templates"] == 5  # the index and the options file are not workflows
    assert result["complete_templates"] == ["complete"]
    assert result["complete"] == 1
    # FancyCoreNode is used by two templates (one of them only inside a nested subgraph), so it ranks first.
    assert result["missing"] == [
        {"node": "FancyCoreNode", "templates": 2, "class": "core"},
        {"node": "CloudImageNode", "templates": 1, "class": "api"},
        {"node": "FamilyLoader", "templates": 1, "class": "flux"},
        {"node": "SomebodysPackNode", "templates": 1, "class": "unknown"},
    ]
    assert result["missing_by_class"] == {"api": 1, "core": 1, "family": 1, "unknown": 1}
    # Reachable: complete ones plus "nested", whose only gap is a core node; "cloud" also needs an API node.
    assert result["reachable"] == 2
    # Node types used: the real ones only -- no subgraph id, no note, no reroute.
    assert result["node_types_used"] == 7


def test_prints_a_ranked_table(templates: Path, classes: Path) -> None:
    done = run("--templates", str(templates), "--classes", str(classes), "--top", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "templates: 5; every node present: 1; reachable with every core node: 2"
    assert lines[1] == "node types used: 7; missing: 4 (api 1, core 1, family 1, unknown 1)"
    rows = [line.split() for line in lines[4:6]]
    assert rows == [["2", "FancyCoreNode", "core"], ["1", "CloudImageNode", "api"]]
    assert lines[-1] == "... 2 more (--top 0 lists all)"


def test_a_missing_templates_folder_is_one_clear_error(tmp_path: Path, classes: Path) -> None:
    done = run("--templates", str(tmp_path / "nowhere"), "--classes", str(classes))
    assert done.returncode == 2
    assert "nowhere is not a folder of templates" in done.stderr


def test_a_broken_template_names_the_file(templates: Path, classes: Path) -> None:
    (templates / "broken.json").write_text("{not json", encoding="utf-8")
    done = run("--templates", str(templates), "--classes", str(classes))
    assert done.returncode != 0
    assert "broken.json is not readable JSON" in done.stderr


def test_a_comfy_that_cannot_run_is_named(templates: Path, classes: Path, tmp_path: Path) -> None:
    env = {**os.environ}
    done = subprocess.run([sys.executable, str(SCRIPT), "--comfy", str(tmp_path / "no-comfy"), "--templates",
                           str(templates), "--classes", str(classes)], capture_output=True, text=True, env=env)
    assert done.returncode != 0
    assert "cannot run" in done.stderr and "no-comfy" in done.stderr


def test_subgraph_walk_reads_each_definition_once() -> None:
    coverage = load(SCRIPT)
    workflow = {"nodes": [node("a-1"), node("a-1"), node("KSampler")],
                "definitions": {"subgraphs": [{"id": "a-1", "nodes": [node("b-2"), node("VAEDecode")]},
                                              {"id": "b-2", "nodes": [node("a-1"), node("CLIPTextEncode")]}]}}
    assert coverage.node_types(workflow) == {"KSampler", "VAEDecode", "CLIPTextEncode"}


COMFY_NODES_PY = '''
class LoadThing:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"model": ("MODEL",)}}
    RETURN_TYPES = ("IMAGE",)

class PlainThing:
    RETURN_TYPES = ("INT",)

NODE_CLASS_MAPPINGS = {"LoadThing": LoadThing, "PlainThing": PlainThing}
'''

FAMILY_MODULE = '''
from comfy_api.latest import io

class FluxPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="FluxPatch", inputs=[io.Model.Input("model")], outputs=[io.Model.Output()])

class FluxPatchV2(FluxPatch):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="FluxPatchV2", inputs=[io.Float.Input("x")], outputs=[])

class EmptyFluxThing(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="EmptyFluxThing", inputs=[io.Int.Input("width")], outputs=[io.Latent.Output()])
'''

API_MODULE = '''
from comfy_api.latest import IO

class CloudNode(IO.ComfyNode):
    @classmethod
    def define_schema(cls):
        return IO.Schema(node_id="CloudNode", inputs=[IO.Image.Input("image")], outputs=[IO.Image.Output()])
'''


def test_node_classes_builder_reads_a_comfyui_tree(tmp_path: Path) -> None:
    root = tmp_path / "ComfyUI"
    (root / "comfy_extras").mkdir(parents=True)
    (root / "comfy_api_nodes").mkdir()
    (root / "nodes.py").write_text(COMFY_NODES_PY, encoding="utf-8")
    (root / "comfy_extras" / "nodes_flux.py").write_text(FAMILY_MODULE, encoding="utf-8")
    (root / "comfy_api_nodes" / "nodes_cloud.py").write_text(API_MODULE, encoding="utf-8")
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"nodes": {"NewerNode": {"class": "core", "module": None, "basis": "by hand"},
                                           "PlainThing": {"class": "api", "module": None}}}), encoding="utf-8")
    done = subprocess.run([sys.executable, str(BUILDER), str(root), "--extra", str(extra)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    nodes = json.loads(done.stdout)["nodes"]
    assert {name: record["class"] for name, record in nodes.items()} == {
        "LoadThing": "core",  # nodes.py is ComfyUI's generic core
        "PlainThing": "core",  # the checkout's own record wins over the hand-kept one
        "FluxPatch": "flux",  # a family module's node that takes the family's model
        "FluxPatchV2": "flux",  # ... and one inheriting that schema's model socket from its base
        "EmptyFluxThing": "core",  # model-free: Hearth can serve it under ComfyUI's name
        "CloudNode": "api",
        "NewerNode": "core",
    }
    assert nodes["LoadThing"]["model_types"] == ["MODEL"]
    assert nodes["CloudNode"]["module"] == "comfy_api_nodes/nodes_cloud.py"


def test_node_classes_builder_refuses_a_folder_without_comfyui(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(BUILDER), str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "holds no nodes.py" in done.stderr


def test_committed_class_table_is_well_formed() -> None:
    nodes = json.loads((ROOT / "bench" / "data" / "node_classes.json").read_text(encoding="utf-8"))["nodes"]
    assert len(nodes) > 500
    assert nodes["GeminiImage2Node"]["class"] == "api"
    assert nodes["LTXVAudioVAELoader"]["class"] == "ltxv"
    assert nodes["ComfySwitchNode"]["class"] == "core"
    assert all(isinstance(r["class"], str) and r["class"] for r in nodes.values())


def test_a_saved_node_list_is_measured_instead_of_running_comfy(templates: Path, classes: Path,
                                                                 tmp_path: Path) -> None:
    saved = tmp_path / "nodes.json"
    saved.write_text(json.dumps({name: {} for name in ("LoadImage", "ImageInvert", "SaveImage", "FancyCoreNode")}),
                     encoding="utf-8")
    done = run("--templates", str(templates), "--classes", str(classes), "--nodes-json", str(saved),
               "--comfy", str(tmp_path / "no-comfy"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["complete_templates"] == ["complete", "nested"]
    assert [m["node"] for m in result["missing"]] == ["CloudImageNode", "FamilyLoader", "SomebodysPackNode"]


def test_widget_counts_are_checked_against_the_stored_values(tmp_path: Path, classes: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    seeded = dict(node("Seeded"), widgets_values=[5, "fixed", 1.0])  # seed + its control_after_generate + cfg
    upload = dict(node("Upload"), widgets_values=["a.png", "image"])  # the combo + the upload button's value
    short = dict(node("Short"), widgets_values=["x", 1])  # stored with two widgets; Hearth declares three
    grow = dict(node("Grow"), widgets_values=[1, 2, 3, 4])  # V3 Autogrow: not checkable
    box = dict(node("Box"), widgets_values=[{"x": 0}, 0, 0, 8, 8])  # a box component stores its 4 fields too
    record = dict(node("Record"), widgets_values=["", ""])  # the recorder and its player
    write(folder, "w", {"nodes": [seeded, upload, short, grow, box, record]})
    info = {
        "Seeded": {"input": {"required": {"model": ["MODEL"], "seed": ["INT", {}], "cfg": ["FLOAT", {}],
                                          "text": ["STRING", {"forceInput": True}]}}},
        "Upload": {"input": {"required": {"image": [["a.png"], {"image_upload": True}]}}},
        "Short": {"input": {"required": {"mode": [["x", "y"]], "n": ["INT", {}], "color": ["COLOR", {}]}}},
        "Grow": {"input": {"required": {"values": ["COMFY_AUTOGROW_V3", {"template": {}}]}}},
        "Box": {"input": {"required": {"image": ["IMAGE"], "crop": ["BOUNDING_BOX", {"component": "ImageCrop"}]}}},
        "Record": {"input": {"required": {"audio": ["AUDIO_RECORD", {}]}}},
    }
    saved = tmp_path / "nodes.json"
    saved.write_text(json.dumps(info), encoding="utf-8")
    done = run("--templates", str(folder), "--classes", str(classes), "--nodes-json", str(saved), "--widgets")
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("widgets:")] == [
        "widgets: Short has 3, templates store 2"]


def ui_chain(method: str) -> dict:
    """LoadImage -> ImageScale -> SaveImage in UI format; the image file is not there (the user's to provide)."""
    return {
        "nodes": [
            {"id": 1, "type": "LoadImage", "inputs": [], "widgets_values": ["missing.png", "image"],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}, {"name": "MASK", "type": "MASK"}]},
            {"id": 2, "type": "ImageScale", "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}],
             "widgets_values": [method, 16, 16, "disabled"]},
            {"id": 3, "type": "SaveImage", "inputs": [{"name": "images", "type": "IMAGE", "link": 2}],
             "outputs": [], "widgets_values": ["out"]},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    }


def test_validate_converts_the_complete_templates_and_lists_hearths_problems(tmp_path: Path,
                                                                             classes: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    write(folder, "good", ui_chain("bilinear"))
    write(folder, "bad", ui_chain("sideways"))  # a combo value Hearth's ImageScale does not offer
    write(folder, "incomplete", {"nodes": [node("NotInHearth")]})  # not complete: not validated
    done = run("--templates", str(folder), "--classes", str(classes), "--validate", "--json")
    assert done.returncode == 0, done.stderr
    checked = json.loads(done.stdout)["validation"]
    assert checked["checked"] == 2 and checked["valid_templates"] == ["good"]
    # The missing image file is the user's to provide; the unknown method is Hearth's problem.
    assert checked["problems"] == [{"node": "ImageScale", "error": "value_not_in_list", "input": "upscale_method",
                                    "templates": 1, "example": "bad"}]


def test_schemas_are_compared_with_comfyuis(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    write(folder, "t", {"nodes": [node("Same"), node("Moved"), node("Retyped")]})
    schema = {"required": [["image", "IMAGE"], ["mode", "COMBO"]], "optional": [["mask", "MASK"]],
              "outputs": ["IMAGE"]}
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"nodes": {name: {"class": "core", "module": "nodes.py", "schema": schema}
                                           for name in ("Same", "Moved", "Retyped")}}), encoding="utf-8")
    same = {"input": {"required": {"image": ["IMAGE"], "mode": [["a", "b"], {}]}, "optional": {"mask": ["MASK"]}},
            "output": ["IMAGE"]}
    info = {"Same": same,
            "Moved": {"input": {"required": {"mode": ["COMBO", {}], "image": ["IMAGE"]}, "optional": {"mask": ["MASK"]}},
                      "output": ["IMAGE"]},
            "Retyped": {"input": {"required": {"image": ["LATENT"], "mode": [["a"]]}, "optional": {"mask": ["MASK"]}},
                        "output": ["IMAGE", "MASK"]}}
    saved = tmp_path / "nodes.json"
    saved.write_text(json.dumps(info), encoding="utf-8")
    done = run("--templates", str(folder), "--classes", str(table), "--nodes-json", str(saved), "--schemas")
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("schema:")] == [
        "schema: Moved: required inputs ['mode', 'image'] vs ComfyUI's ['image', 'mode']",
        "schema: Retyped: image: LATENT vs ComfyUI's IMAGE; outputs ['IMAGE', 'MASK'] vs ComfyUI's ['IMAGE']",
    ]


def test_builder_records_plain_schemas(tmp_path: Path) -> None:
    root = tmp_path / "ComfyUI"
    (root / "comfy_extras").mkdir(parents=True)
    (root / "comfy_api" / "latest").mkdir(parents=True)
    (root / "comfy_api" / "latest" / "_io.py").write_text(
        "@comfytype(io_type='IMAGE')\nclass Image: pass\n@comfytype(io_type='INT')\nclass Int: pass\n"
        "@comfytype(io_type='COMBO')\nclass Combo: pass\n", encoding="utf-8")
    (root / "nodes.py").write_text(COMFY_NODES_PY, encoding="utf-8")
    (root / "comfy_extras" / "nodes_x.py").write_text('''
from comfy_api.latest import io
class Plain(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="Plain", inputs=[io.Image.Input("image"), io.Int.Input("n", default=1),
                         io.Combo.Input("mode", options=["a"], optional=True), io.Hidden.Input("prompt")],
                         outputs=[io.Image.Output()])
class Built(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="Built", inputs=[io.Int.Input(name) for name in "ab"], outputs=[])
''', encoding="utf-8")
    done = subprocess.run([sys.executable, str(BUILDER), str(root)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    nodes = json.loads(done.stdout)["nodes"]
    assert nodes["Plain"]["schema"] == {"required": [["image", "IMAGE"], ["n", "INT"]],
                                        "optional": [["mode", "COMBO"]], "outputs": ["IMAGE"]}
    assert "schema" not in nodes["Built"]  # inputs built at run time: not recorded
    assert nodes["LoadThing"]["schema"] == {"required": [["model", "MODEL"]], "optional": [], "outputs": ["IMAGE"]}


def test_web_module_table_is_generated_from_the_committed_class_table() -> None:
    done = subprocess.run([sys.executable, str(BUILDER), "--python-modules",
                           str(ROOT / "bench" / "data" / "node_classes.json")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "hearth" / "web" / "comfyui_modules.py").read_text(encoding="utf-8")
