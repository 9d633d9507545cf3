"""Rebuild bench/data/node_classes.json, the scope table of bench/template_coverage.py, from ComfyUI's source.

    python bench/node_classes.py COMFYUI_CHECKOUT [--extra bench/data/node_classes_extra.json] \
        > bench/data/node_classes.json

For every node ComfyUI's core defines (``nodes.py``'s ``NODE_CLASS_MAPPINGS``, each ``comfy_extras/*.py`` and
``comfy_api_nodes/*.py`` module: V3 ``io.Schema(node_id=...)`` and V1 ``NODE_CLASS_MAPPINGS`` keys, found by
parsing, never by importing) it records the module that defines it, the model-ish socket types it takes or gives
(MODEL, CLIP, VAE...), its inputs and output types where the source states them plainly (``"schema"``: required
and optional ``[name, type]`` pairs in order, a combo as ``COMBO``; left out where a list is built at run time),
and its class, the reason the coverage script counts it in or out of Hearth's scope:

* ``"api"``: a cloud API node (any module under ``comfy_api_nodes/``): it calls a paid remote service, out of scope;
* a family name (``"flux"``, ``"ltxv"``, ``"hunyuan3d"``...): the node exists for a model family Hearth lacks --
  it is defined in that family's module (FAMILY_MODULES) and takes or gives a model of it, or NODE_FAMILIES names
  it (a family node in a shared module, a model-free node whose data only that family makes);
* ``"core"``: everything else -- generic nodes Hearth should provide. A model-free node in a family's module (an
  empty latent of the family's shape, a conditioning key setter) is ``"core"`` too: it needs no model, so Hearth
  can serve it under ComfyUI's name (issue 19 put EmptySD3LatentImage, FluxGuidance, Flux2Scheduler in scope).

``--python-modules TABLE`` instead writes hearth/web/comfyui_modules.py from a built table: the module ComfyUI's
/object_info names for each of its nodes (``nodes``, ``comfy_extras.nodes_images``...), which the server reports
for Hearth's own nodes of the same names (ComfyUI's frontend badges a node by that module):

    python bench/node_classes.py --python-modules bench/data/node_classes.json > hearth/web/comfyui_modules.py

``--extra`` merges hand-kept entries for nodes newer than the checkout (same record shape plus ``"source"``: where
upstream ComfyUI defines it); the checkout's own records win. The committed table was built from a ComfyUI
snapshot of 2026-01-07 plus that extra file (nodes of later releases, placed by reading upstream's modules).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

# Socket types that carry a loaded model or a model's private data: a node touching one needs that model.
MODEL_TYPES = {
    "MODEL", "CLIP", "VAE", "CLIP_VISION", "STYLE_MODEL", "CONTROL_NET", "GLIGEN", "UPSCALE_MODEL",
    "LATENT_UPSCALE_MODEL", "MODEL_PATCH", "AUDIO_ENCODER", "AUDIO_ENCODER_OUTPUT", "PHOTOMAKER", "LORA_MODEL",
    "MESH", "VOXEL", "LOAD_3D", "LOAD_3D_ANIMATION", "LOAD3D_CAMERA", "WAN_CAMERA_EMBEDDING", "TRACKS",
}
# The comfy_api.latest.io class of each model-ish type, as V3 schemas name them (io.Model.Input(...)).
V3_CLASSES = {
    "Model": "MODEL", "Clip": "CLIP", "Vae": "VAE", "ClipVision": "CLIP_VISION", "StyleModel": "STYLE_MODEL",
    "ControlNet": "CONTROL_NET", "Gligen": "GLIGEN", "UpscaleModel": "UPSCALE_MODEL",
    "LatentUpscaleModel": "LATENT_UPSCALE_MODEL", "MODEL_PATCH": "MODEL_PATCH", "ModelPatch": "MODEL_PATCH",
    "AudioEncoder": "AUDIO_ENCODER", "AudioEncoderOutput": "AUDIO_ENCODER_OUTPUT", "Photomaker": "PHOTOMAKER",
    "LoraModel": "LORA_MODEL", "Mesh": "MESH", "Voxel": "VOXEL", "Load3D": "LOAD_3D",
    "Load3DAnimation": "LOAD_3D_ANIMATION", "Load3DCamera": "LOAD3D_CAMERA",
    "WanCameraEmbedding": "WAN_CAMERA_EMBEDDING", "Tracks": "TRACKS",
}

# comfy_extras modules written for one model family (Hearth has SD1.x/SDXL and AnimateDiff; its Wan is one tiny
# 2.1 text-to-video path, so the Wan modules' image/camera/VACE nodes count as a family it lacks).
FAMILY_MODULES = {
    "nodes_ace.py": "ace_step", "nodes_audio_encoder.py": "audio_encoder", "nodes_camera_trajectory.py": "wan",
    "nodes_chroma_radiance.py": "chroma", "nodes_cosmos.py": "cosmos", "nodes_flux.py": "flux",
    "nodes_hidream.py": "hidream", "nodes_hunyuan.py": "hunyuan", "nodes_hunyuan3d.py": "hunyuan3d",
    "nodes_kandinsky5.py": "kandinsky5", "nodes_lotus.py": "lotus", "nodes_lt.py": "ltxv", "nodes_lt_audio.py": "ltxv",
    "nodes_lt_upsampler.py": "ltxv", "nodes_lumina2.py": "lumina2", "nodes_mochi.py": "mochi",
    "nodes_pixart.py": "pixart", "nodes_qwen.py": "qwen", "nodes_sd3.py": "sd3", "nodes_stable3d.py": "stable_zero123",
    "nodes_stable_cascade.py": "stable_cascade", "nodes_wan.py": "wan", "nodes_wanmove.py": "wan",
    "nodes_photomaker.py": "photomaker", "nodes_model_patch.py": "model_patch", "nodes_load_3d.py": "3d",
    "nodes_textgen.py": "llm", "nodes_moge.py": "moge", "nodes_sam3.py": "sam3", "nodes_trellis2.py": "trellis2",
}

# Nodes whose family the module rule cannot see: family nodes in shared modules, model-free nodes whose inputs
# only a family's model makes (an LTXV audio+video latent, a 3D mesh), LotusConditioning, whose output is a
# frozen text encoder's result that ComfyUI ships as constants (serving it means that encoder or those numbers),
# and patches that only a diffusion transformer's forward honours ("dit": skip-layer guidance replaces DiT
# double/single blocks by index, ScaleROPE sets rotary-embedding options; Hearth's models are UNets).
NODE_FAMILIES = {
    "ConditioningStableAudio": "stable_audio", "VAEEncodeAudio": "stable_audio", "VAEDecodeAudio": "stable_audio",
    "ImageOnlyCheckpointLoader": "svd", "SVD_img2vid_Conditioning": "svd", "ImageOnlyCheckpointSave": "svd",
    "ModelMergeSD3_2B": "sd3", "ModelMergeAuraflow": "auraflow", "ModelMergeFlux1": "flux",
    "ModelMergeSD35_Large": "sd3", "ModelMergeMochiPreview": "mochi", "ModelMergeLTXV": "ltxv",
    "ModelMergeCosmos7B": "cosmos", "ModelMergeCosmos14B": "cosmos", "ModelMergeWAN2_1": "wan",
    "ModelMergeCosmosPredict2_2B": "cosmos", "ModelMergeCosmosPredict2_14B": "cosmos",
    "ModelMergeQwenImage": "qwen", "SaveGLB": "3d", "LTXVSeparateAVLatent": "ltxv", "LTXVConcatAVLatent": "ltxv",
    "LotusConditioning": "lotus", "SkipLayerGuidanceDiT": "dit", "SkipLayerGuidanceDiTSimple": "dit",
    "ScaleROPE": "dit",
}


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _types_used(tree: ast.AST) -> set[str]:
    """Model-ish socket types a class's source names: V3 ``io.Model.Input`` / ``IO.Vae.Output`` attribute chains,
    and V1 type strings ("MODEL") anywhere in it (INPUT_TYPES, RETURN_TYPES)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("Input", "Output") \
                and isinstance(node.value, ast.Attribute) and node.value.attr in V3_CLASSES:
            found.add(V3_CLASSES[node.value.attr])
        elif (text := _literal(node)) in MODEL_TYPES:
            found.add(text)
    return found


def io_types(root: Path) -> dict[str, str]:
    """V3 io class name -> socket type, from ``@comfytype(io_type="X")`` decorators in comfy_api's _io.py."""
    found = {}
    for path in sorted((root / "comfy_api").rglob("_io.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for deco in node.decorator_list:
                    if isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "comfytype":
                        for keyword in deco.keywords:
                            if keyword.arg == "io_type" and (kind := _literal(keyword.value)):
                                found[node.name] = kind
    return found


def _v3_schema(cls: ast.ClassDef, types: dict[str, str]) -> dict | None:
    """Inputs and outputs of a V3 ``io.Schema(...)`` whose lists are literal; None where any part is computed."""
    for call in ast.walk(cls):
        if not (isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "Schema"):
            continue
        args = {k.arg: k.value for k in call.keywords}
        schema: dict = {"required": [], "optional": [], "outputs": []}
        for item in getattr(args.get("inputs"), "elts", None) or []:
            func = getattr(item, "func", None)
            if not (isinstance(item, ast.Call) and isinstance(func, ast.Attribute) and func.attr == "Input"
                    and isinstance(func.value, ast.Attribute)):
                return None
            if func.value.attr == "Hidden":
                continue
            kind = types.get(func.value.attr)
            keywords = {k.arg: k.value for k in item.keywords}
            name = _literal(item.args[0]) if item.args else _literal(keywords.get("id"))
            if kind is None or name is None:
                return None
            optional = isinstance(keywords.get("optional"), ast.Constant) and keywords["optional"].value is True
            schema["optional" if optional else "required"].append([name, kind])
        if "inputs" in args and not isinstance(args["inputs"], ast.List):
            return None
        outputs = args.get("outputs")
        if outputs is not None and not isinstance(outputs, ast.List):
            return None
        for item in getattr(outputs, "elts", None) or []:
            func = getattr(item, "func", None)
            kind = types.get(func.value.attr) if isinstance(func, ast.Attribute) and isinstance(
                func.value, ast.Attribute) and func.attr == "Output" else None
            if kind is None:
                return None
            schema["outputs"].append(kind)
        return schema
    return None


def _v1_schema(cls: ast.ClassDef) -> dict | None:
    """Inputs and RETURN_TYPES of a V1 class whose INPUT_TYPES returns a dict literal; a type that is not a string
    literal (a file list, a list of choices) is a combo."""
    returns = next((n.value for n in cls.body if isinstance(n, ast.Assign) and any(
        getattr(t, "id", None) == "RETURN_TYPES" for t in n.targets)), None)
    method = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "INPUT_TYPES"), None)
    ret = next((n.value for n in ast.walk(method) if isinstance(n, ast.Return)), None) if method else None
    if not isinstance(ret, ast.Dict) or not isinstance(returns, ast.Tuple | ast.List):
        return None
    schema: dict = {"required": [], "optional": [], "outputs": []}
    for section, body in zip(ret.keys, ret.values, strict=True):
        section = _literal(section)
        if section == "hidden":
            continue
        if section not in ("required", "optional") or not isinstance(body, ast.Dict):
            return None
        for key, value in zip(body.keys, body.values, strict=True):
            name = _literal(key)
            first = value.elts[0] if isinstance(value, ast.Tuple | ast.List) and value.elts else None
            if name is None or first is None:
                return None
            schema[section].append([name, _literal(first) or "COMBO"])
    for item in returns.elts:
        if _literal(item) is None:
            return None
        schema["outputs"].append(_literal(item))
    return schema


def _node_ids(cls: ast.ClassDef) -> list[str]:
    ids = []
    for node in ast.walk(cls):
        if isinstance(node, ast.Call):
            ids += [v for k in node.keywords if k.arg == "node_id" and (v := _literal(k.value))]
    return ids


def _mapping_keys(tree: ast.Module) -> dict[str, str]:
    """V1 registrations: ``NODE_CLASS_MAPPINGS = {"Name": Class, ...}`` -> {name: class name}."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and any(
                isinstance(t, ast.Name) and t.id == "NODE_CLASS_MAPPINGS" for t in node.targets):
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if (name := _literal(key)) and isinstance(value, ast.Name):
                    found[name] = value.id
    return found


def module_nodes(path: Path, root: Path, types: dict[str, str] | None = None) -> dict[str, dict]:
    """Every node a module defines, as {name: {"module", "model_types", "schema"?}}; a class's model types include
    those its bases in the same module name (V3 nodes often override only node_id)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}

    def types_of(name: str, seen: frozenset = frozenset()) -> set[str]:
        cls = classes[name]
        found = _types_used(cls)
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in classes and base.id not in seen:
                found |= types_of(base.id, seen | {name})
        return found

    module = path.relative_to(root).as_posix()
    nodes = {}

    def record(node_id: str, class_name: str, schema: dict | None) -> None:
        nodes[node_id] = {"module": module, "model_types": sorted(types_of(class_name))}
        if schema is not None:
            nodes[node_id]["schema"] = schema

    for name, cls in classes.items():
        for node_id in _node_ids(cls):
            record(node_id, name, _v3_schema(cls, types or {}))
    for node_id, class_name in _mapping_keys(tree).items():
        if class_name in classes and node_id not in nodes:
            record(node_id, class_name, _v1_schema(classes[class_name]))
    return nodes


def classify(name: str, record: dict) -> str:
    module = record["module"]
    if module.startswith("comfy_api_nodes/"):
        return "api"
    if name in NODE_FAMILIES:
        return NODE_FAMILIES[name]
    family = FAMILY_MODULES.get(module.rsplit("/", 1)[-1])
    if family and record["model_types"]:
        return family
    return "core"


def build(root: Path, extra: dict[str, dict]) -> dict:
    records: dict[str, dict] = {}
    types = io_types(root)
    paths = [root / "nodes.py", *sorted((root / "comfy_extras").glob("*.py")),
             *sorted((root / "comfy_api_nodes").rglob("nodes_*.py"))]
    for path in paths:
        if path.exists():
            records.update(module_nodes(path, root, types))
    for name, record in extra.items():
        records.setdefault(name, record)
    nodes = {name: {"class": record.get("class") or classify(name, record), **record}
             for name, record in sorted(records.items())}
    return {"about": "Where ComfyUI defines each core node and whether Hearth's scope includes it: 'api' (cloud "
                     "API node), a model family name (needs that family), or 'core'. Rebuilt by "
                     "bench/node_classes.py; read by bench/template_coverage.py.",
            "nodes": nodes}


def comfyui_module(record: dict) -> str | None:
    """The dotted module ComfyUI reports for a node; for a node newer than the checkout (no file known), the
    package alone, which is what the frontend reads."""
    if record.get("class") == "custom":
        return None
    module = record.get("module")
    if module:
        return module.removesuffix(".py").replace("/", ".")
    return "comfy_api_nodes" if record.get("class") == "api" else "comfy_extras"


WEB_MODULE_TAIL = '''_MODULE_OF = {name: module for module, names in COMFYUI_MODULES.items() for name in names}


def reported_module(name: str, python_module: str | None) -> str | None:
    """What /object_info says for a node: ComfyUI's module when Hearth's own code serves one of ComfyUI's core
    nodes (the frontend shows those as core, not as an unknown extension); a pack's node keeps its own."""
    if python_module and python_module.split(".")[0].startswith("hearth") and name in _MODULE_OF:
        return _MODULE_OF[name]
    return python_module
'''


def python_modules_source(table: dict) -> str:
    by_module: dict[str, list[str]] = {}
    for name, record in sorted(table["nodes"].items()):
        module = comfyui_module(record)
        if module:
            by_module.setdefault(module, []).append(name)
    lines = ['"""The module ComfyUI\'s /object_info names for each of its core nodes (``python_module``): ``nodes`` for',
             "nodes.py's, ``comfy_extras.nodes_<file>`` and ``comfy_api_nodes.nodes_<file>`` for the rest (the package",
             "alone for nodes newer than the ComfyUI source read). Generated from bench/data/node_classes.json by",
             '``python bench/node_classes.py --python-modules``; do not edit by hand."""', "",
             "COMFYUI_MODULES: dict[str, tuple[str, ...]] = {"]
    for module, names in sorted(by_module.items()):
        lines.append(f"    {json.dumps(module)}: (")
        row = "       "
        for name in names:
            item = f" {json.dumps(name)},"
            if len(row) + len(item) > 110:
                lines.append(row)
                row = "       "
            row += item
        lines += [row, "    ),"]
    lines += ["}", "", ""]
    return "\n".join(lines) + WEB_MODULE_TAIL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("comfyui", type=Path, nargs="?", help="a ComfyUI checkout (the folder holding nodes.py)")
    parser.add_argument("--extra", type=Path, help="hand-kept records of nodes newer than the checkout")
    parser.add_argument("--python-modules", type=Path, metavar="TABLE",
                        help="write hearth/web/comfyui_modules.py's source from a built table instead")
    args = parser.parse_args(argv)
    if args.python_modules:
        sys.stdout.write(python_modules_source(json.loads(args.python_modules.read_text(encoding="utf-8"))))
        return 0
    if args.comfyui is None:
        print("error: give a ComfyUI checkout (or --python-modules TABLE)", file=sys.stderr)
        return 2
    if not (args.comfyui / "nodes.py").is_file():
        print(f"error: {args.comfyui} holds no nodes.py; give the folder of a ComfyUI checkout", file=sys.stderr)
        return 2
    extra = json.loads(args.extra.read_text(encoding="utf-8"))["nodes"] if args.extra else {}
    json.dump(build(args.comfyui, extra), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
