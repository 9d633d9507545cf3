"""Measure how many of ComfyUI's workflow templates Hearth can open: every node type they use present. Prints figures.

    .venv/bin/python bench/template_coverage.py [--templates DIR] [--comfy PATH | --nodes-json FILE] [--json]
        [--top N]

The templates are the UI-format workflows of the ``comfyui-workflow-templates-json`` package (MIT; a dev
dependency, requirements/dev.txt), read from its ``templates/`` folder unless ``--templates`` names another. The
node types Hearth has are what the real ``comfy nodes --json`` of this environment lists (run as a subprocess, so
what is measured is what a user gets; ``--comfy`` names another ``comfy``, ``--nodes-json`` reads a saved output of
it instead: how an earlier figure is measured again). For each template the node types it
uses are collected from its top-level nodes and, where a node's type is the id of one of the workflow's subgraphs
(``definitions.subgraphs``), from that subgraph's nodes, recursively -- a subgraph instance is not a node type.
Frontend-only types (notes, reroutes, primitive widgets) are skipped: the browser draws them, no server runs them.

It prints how many templates have every node type present, and the node types still missing ranked by how many
templates use them, each with its class from bench/data/node_classes.json (rebuilt from ComfyUI's source by
bench/node_classes.py): ``api`` (a cloud API node: out of scope), a model family Hearth lacks (out of scope until
that family exists), ``core`` (a generic node Hearth should have), ``custom`` (a custom-node pack's, not ComfyUI's)
or ``unknown`` (not in the table: a templates release newer than it). "Reachable" counts the templates whose only missing types are core ones: what adding every
core node would give.

``--widgets`` also checks the inputs of the node types Hearth has against the templates: a UI workflow stores one
value per widget (``widgets_values``, in input order), so a node whose widget count matches none of the counts
the templates store for it is listed: their values may land in the wrong widgets (fewer values can be an older
file, whose missing widgets take their defaults). Widgets are counted as the frontend makes them: combos,
INT/FLOAT/STRING/BOOLEAN and the frontend's own widget types (COLOR, BOUNDING_BOX...), not ``forceInput`` ones; an
upload option adds its button's value, a seed its control_after_generate value, the audio recorder its player's
value and a bounding box drawn with a component its four number fields. Nodes with V3 dynamic inputs (Autogrow,
DynamicCombo) are left out: their count depends on the values.

``--schemas`` compares each present node's inputs and outputs with ComfyUI's, as the class table records them
from ComfyUI's source: required inputs in order, optional ones, their socket types (a combo is a combo whatever
lists it) and the output types. A difference is a node a ComfyUI workflow may not load into as saved.

``--validate`` goes one step further for the templates with every node present: each is converted to an API
prompt by Hearth's own UI-format reader and validated as ``/prompt`` would, in this process (one Runtime over an
empty models folder). What a user fixes by downloading is not counted against a template -- a model file or an
uploaded input that is not there -- so a problem listed is one Hearth has (a combo value it lacks, an input the
conversion dropped, a link of the wrong type).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

FRONTEND_ONLY = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
# Input types ComfyUI's frontend draws as a widget (one stored value each); any other type is a socket, or a
# display the frontend keeps no value for (RESOLUTION_PREVIEW, ResolutionSelector's live size preview).
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "COLOR", "COLORS", "BOUNDING_BOX",
                          "BOUNDING_BOXES", "AUDIO_RECORD", "CURVE", "IMAGECOMPARE", "MARKDOWN", "WEBCAM"})
UPLOAD_OPTIONS = ("image_upload", "audio_upload", "video_upload", "animated_image_upload")
DYNAMIC_TYPES = ("COMFY_AUTOGROW_V3", "COMFY_DYNAMICCOMBO_V3", "COMFY_DYNAMICSLOT_V3", "COMFY_MULTITYPED_V3")
# Nodes whose further widgets ComfyUI's frontend itself defines (CustomCombo's user-written options).
FRONTEND_WIDGETS = frozenset({"CustomCombo"})
CLASSES_FILE = Path(__file__).with_name("data") / "node_classes.json"
OUT_OF_SCOPE = "api"  # plus every family name: what is neither "core" nor "unknown"
# A combo value naming a file (a model, an uploaded image): missing because the user has not downloaded it.
FILE_VALUE = re.compile(r"\w\.[A-Za-z0-9]{2,12}$")
FILE_NAMED = re.compile(r"\w\.[A-Za-z0-9]{2,12}\b")  # ... or the message of a loader's own file check


@dataclass
class Template:
    name: str
    types: set[str]
    missing: set[str] = field(default_factory=set)
    widget_counts: dict[str, set[int]] = field(default_factory=dict)  # node type -> lengths of widgets_values


def default_templates() -> Path:
    try:
        import comfyui_workflow_templates_json
    except ImportError:
        raise SystemExit("error: the comfyui-workflow-templates-json package is not installed; install the dev "
                         "requirements (pip install -c constraints/dev.txt -r requirements/dev.txt) or give "
                         "--templates DIR") from None
    return Path(comfyui_workflow_templates_json.__file__).with_name("templates")


def node_types(workflow: dict, widget_counts: dict[str, set[int]] | None = None) -> set[str]:
    """The node types a UI-format workflow runs: its nodes', with subgraph instances replaced by their contents.
    ``widget_counts`` collects how many widget values each type's nodes store."""
    subgraphs = {s["id"]: s for s in (workflow.get("definitions") or {}).get("subgraphs", []) if "id" in s}
    types: set[str] = set()
    expanded: set[str] = set()
    counts = widget_counts if widget_counts is not None else {}

    def walk(nodes: list) -> None:
        for node in nodes:
            kind = node.get("type") if isinstance(node, dict) else None
            if not kind or kind in FRONTEND_ONLY:
                continue
            if kind in subgraphs:
                if kind not in expanded:  # a subgraph used twice, or one that contains itself, is read once
                    expanded.add(kind)
                    walk(subgraphs[kind].get("nodes", []))
            else:
                types.add(kind)
                if isinstance(node.get("widgets_values"), list):
                    counts.setdefault(kind, set()).add(len(node["widgets_values"]))

    walk(workflow.get("nodes", []))
    return types


def read_templates(folder: Path) -> list[Template]:
    """Every UI-format workflow in the folder; the index and other non-workflow JSON files are skipped."""
    templates = []
    for path in sorted(folder.glob("*.json")):
        try:
            workflow = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"error: {path} is not readable JSON ({exc})") from None
        if isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list):
            counts: dict[str, set[int]] = {}
            templates.append(Template(path.stem, node_types(workflow, counts), widget_counts=counts))
    return templates


def widget_count(info: dict) -> int | None:
    """How many values ComfyUI's frontend stores for a node of this object_info entry; None where V3 dynamic
    inputs make it depend on the values."""
    count = 0
    for section in ("required", "optional"):
        for name, spec in (info.get("input", {}).get(section) or {}).items():
            kind = spec[0] if isinstance(spec, list) and spec else spec
            options = spec[1] if isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], dict) else {}
            if kind in DYNAMIC_TYPES:
                return None
            if options.get("forceInput") or not (isinstance(kind, list) or kind in WIDGET_TYPES):
                continue
            count += 1 + any(options.get(key) for key in UPLOAD_OPTIONS)
            if kind == "AUDIO_RECORD" or (kind == "BOUNDING_BOX" and options.get("component")):
                # The recorder also stores its player's value; a box component its x/y/width/height fields.
                count += 1 if kind == "AUDIO_RECORD" else 4
            if kind == "INT" and (options.get("control_after_generate") or name in ("seed", "noise_seed")):
                count += 1
    return count


def widget_mismatches(templates: list[Template], info: dict[str, dict]) -> list[dict]:
    """Node types Hearth has whose widget count matches none of the counts the templates store for them."""
    stored: dict[str, set[int]] = {}
    for template in templates:
        for kind, counts in template.widget_counts.items():
            stored.setdefault(kind, set()).update(counts)
    found = []
    for kind in sorted(stored.keys() & info.keys()):
        count = None if kind in FRONTEND_WIDGETS else widget_count(info[kind])
        if count is not None and count not in stored[kind]:
            found.append({"node": kind, "hearth": count, "templates": sorted(stored[kind])})
    return found


def _users_fix(error: dict) -> bool:
    """An error the user fixes by putting a file in place: a model or input file the combo does not list, or an
    upload input whose file is missing."""
    received = (error.get("extra_info") or {}).get("received_value")
    if error.get("type") == "value_not_in_list":
        return isinstance(received, str) and bool(FILE_VALUE.search(received))
    return error.get("type") == "custom_validation_failed" and bool(FILE_NAMED.search(error.get("details", "")))


def validate_templates(folder: Path, templates: list[Template]) -> dict:
    """Convert and validate every template whose node types are all present (see --validate)."""
    import tempfile

    from hearth.core.executor import Executor
    from hearth.core.executor.workflow import ui_to_api
    from hearth.core.runtime import Runtime

    checked, valid, problems = 0, [], Counter()
    examples: dict[tuple, str] = {}
    with tempfile.TemporaryDirectory() as models, Runtime.build(models_dir=Path(models)).activate() as runtime:
        registry = runtime.nodes
        executor = Executor(registry)
        for template in templates:
            if template.types - set(registry):
                continue
            checked += 1
            workflow = json.loads((folder / f"{template.name}.json").read_text(encoding="utf-8"))
            try:
                found = executor.validate(ui_to_api(workflow, registry))
            except Exception as exc:  # a conversion failure is a finding, not the end of the measurement
                found, key = None, ("(conversion)", type(exc).__name__, str(exc)[:120])
                problems[key] += 1
                examples.setdefault(key, template.name)
                continue
            keys = {(entry["class_type"], error["type"], (error.get("extra_info") or {}).get("input_name") or "")
                    for entry in found.node_errors.values() for error in entry["errors"] if not _users_fix(error)}
            if found.error is not None and not found.node_errors:
                keys.add(("(prompt)", found.error.get("type", ""), found.error.get("message", "")[:120]))
            for key in keys:
                problems[key] += 1
                examples.setdefault(key, template.name)
            if not keys:
                valid.append(template.name)
    return {"checked": checked, "valid": len(valid), "valid_templates": valid,
            "problems": [{"node": node, "error": kind, "input": name, "templates": count, "example": examples[key]}
                         for key, count in problems.most_common() for node, kind, name in [key]]}


def hearth_nodes(comfy: Path) -> dict[str, dict]:
    """What ``comfy nodes --json`` lists (one whose INPUT_TYPES fails is listed too: it is present)."""
    try:
        done = subprocess.run([str(comfy), "nodes", "--json"], capture_output=True, text=True, timeout=600)
    except OSError as exc:
        raise SystemExit(f"error: cannot run {comfy} ({exc}); give the comfy command with --comfy") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"error: `{comfy} nodes --json` exited {done.returncode}: {tail}")
    return json.loads(done.stdout)


def load_table(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text(encoding="utf-8"))["nodes"]


def load_classes(path: Path) -> dict[str, str]:
    return {name: record["class"] for name, record in load_table(path).items()}


def _kind(spec: object) -> str:
    kind = spec[0] if isinstance(spec, list) and spec else spec
    return "COMBO" if isinstance(kind, list) else str(kind)


def _same_type(ours: str, theirs: str) -> bool:
    # A match-type or wildcard socket takes what it is given; the names and order are what a workflow relies on.
    loose = {"*", "COMFY_MATCHTYPE_V3", "COMFY_MULTITYPED_V3"}
    return ours == theirs or ours in loose or theirs in loose


def schema_differences(info: dict[str, dict], table: dict[str, dict]) -> list[dict]:
    """Present nodes whose inputs or outputs differ from the schema the table records for ComfyUI's node."""
    found = []
    for name in sorted(info.keys() & table.keys()):
        schema = table[name].get("schema")
        if not schema or "error" in info[name]:
            continue
        inputs = info[name].get("input", {})
        problems = []
        for section in ("required", "optional"):
            ours = [(n, _kind(spec)) for n, spec in (inputs.get(section) or {}).items()
                    if "." not in n]  # dotted members belong to a V3 dynamic input listed beside them
            theirs = [tuple(pair) for pair in schema[section]]
            if [n for n, _ in ours] != [n for n, _ in theirs]:
                problems.append(f"{section} inputs {[n for n, _ in ours]} vs ComfyUI's {[n for n, _ in theirs]}")
                continue
            problems += [f"{n}: {a} vs ComfyUI's {b}" for (n, a), (_, b) in zip(ours, theirs, strict=True)
                         if not _same_type(a, b)]
        outputs = [str(kind) for kind in info[name].get("output", [])]
        if len(outputs) != len(schema["outputs"]) or not all(
                _same_type(a, b) for a, b in zip(outputs, schema["outputs"], strict=False)):
            problems.append(f"outputs {outputs} vs ComfyUI's {schema['outputs']}")
        if problems:
            found.append({"node": name, "differences": problems})
    return found


def measure(templates: list[Template], present: set[str], classes: dict[str, str]) -> dict:
    uses: Counter[str] = Counter()
    for template in templates:
        template.missing = template.types - present
        uses.update(template.missing)
    missing = [{"node": name, "templates": count, "class": classes.get(name, "unknown")}
               for name, count in sorted(uses.items(), key=lambda item: (-item[1], item[0]))]
    by_class = Counter(m["class"] if m["class"] in ("core", "api", "custom", "unknown") else "family"
                       for m in missing)
    complete = [t.name for t in templates if not t.missing]
    reachable = [t.name for t in templates if all(classes.get(n) == "core" for n in t.missing)]
    return {
        "templates": len(templates),
        "complete": len(complete),
        "reachable": len(reachable),
        "node_types_used": len(set().union(*(t.types for t in templates))) if templates else 0,
        "node_types_missing": len(missing),
        "missing_by_class": dict(sorted(by_class.items())),
        "missing": missing,
        "complete_templates": complete,
    }


def print_report(result: dict, top: int) -> None:
    print(f"templates: {result['templates']}; every node present: {result['complete']}; "
          f"reachable with every core node: {result['reachable']}")
    counts = ", ".join(f"{k} {v}" for k, v in result["missing_by_class"].items()) or "none"
    print(f"node types used: {result['node_types_used']}; missing: {result['node_types_missing']} ({counts})")
    if not result["missing"]:
        return
    rows = result["missing"] if top <= 0 else result["missing"][:top]
    width = max(len(m["node"]) for m in rows)
    print(f"\n{'templates':>9}  {'node type':<{width}}  class")
    for m in rows:
        print(f"{m['templates']:>9}  {m['node']:<{width}}  {m['class']}")
    if len(rows) < len(result["missing"]):
        print(f"... {len(result['missing']) - len(rows)} more (--top 0 lists all)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=Path, help="folder of UI-format template workflows (default: the "
                                                          "installed comfyui-workflow-templates-json package's)")
    parser.add_argument("--comfy", type=Path, default=Path(sys.executable).with_name("comfy"),
                        help="the comfy command whose `comfy nodes --json` is measured (default: beside python)")
    parser.add_argument("--nodes-json", type=Path, help="a saved `comfy nodes --json` output to measure instead")
    parser.add_argument("--classes", type=Path, default=CLASSES_FILE, help="the node class table (JSON)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--top", type=int, default=40, help="missing node types to list (0: all)")
    parser.add_argument("--widgets", action="store_true",
                        help="also list node types whose widget count matches no template's stored values")
    parser.add_argument("--schemas", action="store_true",
                        help="also list present nodes whose inputs/outputs differ from ComfyUI's (class table)")
    parser.add_argument("--validate", action="store_true",
                        help="also convert and validate the templates with every node present (in this process)")
    args = parser.parse_args(argv)
    folder = args.templates or default_templates()
    if not folder.is_dir():
        print(f"error: {folder} is not a folder of templates", file=sys.stderr)
        return 2
    info = json.loads(args.nodes_json.read_text(encoding="utf-8")) if args.nodes_json else hearth_nodes(args.comfy)
    templates = read_templates(folder)
    table = load_table(args.classes)
    result = measure(templates, set(info), {name: record["class"] for name, record in table.items()})
    if args.widgets:
        result["widget_mismatches"] = widget_mismatches(templates, info)
    if args.schemas:
        result["schema_differences"] = schema_differences(info, table)
    if args.validate:
        result["validation"] = validate_templates(folder, templates)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_report(result, args.top)
        for item in result.get("widget_mismatches", []):
            print(f"widgets: {item['node']} has {item['hearth']}, templates store "
                  f"{' or '.join(map(str, item['templates']))}")
        for item in result.get("schema_differences", []):
            print(f"schema: {item['node']}: {'; '.join(item['differences'])}")
        if "validation" in result:
            checked = result["validation"]
            print(f"validate: {checked['valid']} of {checked['checked']} templates with every node convert and "
                  "validate (missing model and input files aside)")
            for item in checked["problems"]:
                print(f"validate: {item['templates']:>3}  {item['node']} {item['input']}: {item['error']} "
                      f"(e.g. {item['example']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
