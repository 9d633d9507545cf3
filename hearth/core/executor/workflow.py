"""UI-format workflows (what ComfyUI's frontend saves) converted to the API format the executor runs.

Handles links in both the list and the object form, widget values mapped to inputs in ``INPUT_TYPES`` order (with
the frontend's extra ``control_after_generate`` values skipped), muted (mode 2) and bypassed (mode 4) nodes,
subgraph instances expanded from ``definitions.subgraphs``, and the frontend-only nodes: Note and MarkdownNote are
dropped, Reroute is folded into the link it carries, PrimitiveNode's value is written into the inputs it feeds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hearth.core.executor.graph import PromptFormatError
from hearth.core.node_registry import NodeRegistry
from hearth.core.nodes import WIDGET_TYPES, NodeDefinitionError

DROPPED = frozenset({"Note", "MarkdownNote"})
MODE_MUTED, MODE_BYPASS = 2, 4
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
SUBGRAPH_INPUT, SUBGRAPH_OUTPUT = -10, -20
BOX_EDITOR_VALUES = 4  # what the frontend's bounding-box editor saves after the box: its own view of it
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"  # ComfyUI's V3 combo whose choice brings widgets of its own


class WorkflowFileError(ValueError):
    """A workflow file could not be read as JSON; ``str()`` is one line naming the file and the problem."""


def read_workflow_file(path: str | Path) -> Any:
    """The JSON in a workflow file (either format), tolerating the BOM some Windows editors write."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise WorkflowFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WorkflowFileError(f"{path}: is a folder, not a workflow file") from None
    except UnicodeDecodeError as exc:
        raise WorkflowFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowFileError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def is_ui_workflow(data: Any) -> bool:
    return isinstance(data, Mapping) and isinstance(data.get("nodes"), list) and "links" in data


def _link_tuple(link: Any) -> tuple[Any, Any, int, Any, int, str]:
    """(id, origin_id, origin_slot, target_id, target_slot, type) from either link form."""
    if isinstance(link, Mapping):
        return (link["id"], link["origin_id"], int(link["origin_slot"]), link["target_id"], int(link["target_slot"]),
                link.get("type", "*"))
    link_id, origin, origin_slot, target, target_slot, kind = (list(link) + ["*"])[:6]
    return link_id, origin, int(origin_slot), target, int(target_slot), kind


class _Flat:
    """Nodes and links with subgraph instances expanded; ids are strings (``"inst:inner"`` inside subgraphs)."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.links: dict[str, tuple[str, int, str, int, str]] = {}  # id -> (origin, slot, target, slot, type)
        self.values: dict[str, Any] = {}  # link id -> value of a subgraph instance's promoted widget

    def add(self, nodes: list[Mapping[str, Any]], links: list[Any], prefix: str,
            subgraphs: Mapping[str, Mapping[str, Any]], depth: int = 0, outer_mode: Any = None) -> None:
        if depth > 32:
            raise PromptFormatError("subgraphs nest more than 32 levels deep (a subgraph that contains itself?)")
        for raw in links or []:
            link_id, origin, o_slot, target, t_slot, kind = _link_tuple(raw)
            self.links[f"{prefix}{link_id}"] = (f"{prefix}{origin}", o_slot, f"{prefix}{target}", t_slot, kind)
        for node in nodes:
            node_id = f"{prefix}{node['id']}"
            # Muting or bypassing a subgraph instance mutes or bypasses everything inside it, as in the frontend.
            mode = node.get("mode")
            if outer_mode == MODE_MUTED or (outer_mode == MODE_BYPASS and mode != MODE_MUTED):
                mode = outer_mode
            definition = subgraphs.get(str(node.get("type")))
            if definition is None:
                self.nodes[node_id] = dict(node, id=node_id, mode=mode, _prefix=prefix)
                continue
            inner = f"{node_id}:"
            self.add(definition.get("nodes", []), definition.get("links", []), inner, subgraphs, depth + 1, mode)
            self._wire_boundary(node, node_id, inner, prefix, definition)

    def _wire_boundary(self, node: Mapping[str, Any], node_id: str, inner: str, prefix: str,
                       definition: Mapping[str, Any]) -> None:
        """Replace the subgraph's input/output pseudo-nodes with the instance's outside links.

        The subgraph's inner links name its inputs by their index in the definition; the instance lists its inputs
        in an order (and a subset) of its own, matched to the definition's by name, as the frontend matches them.
        """
        outside_in = {}
        promoted = {}  # definition input index -> the instance's own value for a widget with no outside link
        values = node.get("widgets_values")
        declared = [item.get("name") for item in definition.get("inputs") or []]

        def index_of(slot: int, item: Mapping[str, Any]) -> int:
            name = item.get("name")
            return declared.index(name) if name in declared else slot

        for slot, item in enumerate(node.get("inputs") or []):
            if item.get("link") is not None:
                outside_in[index_of(slot, item)] = self.links.get(f"{prefix}{item['link']}")
        if isinstance(values, list):
            promoted = _promoted_values(node, definition, values, index_of)
        for link_id, (origin, o_slot, target, t_slot, kind) in list(self.links.items()):
            if origin == f"{inner}{SUBGRAPH_INPUT}":
                source = outside_in.get(o_slot)
                if source is None:
                    # Unlinked outside: the instance's widget value if it has one, else the inner widget's own.
                    del self.links[link_id]
                    if o_slot in promoted:
                        self.values[link_id] = promoted[o_slot]
                else:
                    self.links[link_id] = (source[0], source[1], target, t_slot, kind)
        inner_out = {t_slot: (origin, o_slot) for origin, o_slot, target, t_slot, _ in self.links.values()
                     if target == f"{inner}{SUBGRAPH_OUTPUT}"}
        for link_id, (origin, o_slot, target, t_slot, kind) in list(self.links.items()):
            if origin == node_id and o_slot in inner_out:
                self.links[link_id] = (*inner_out[o_slot], target, t_slot, kind)


def ui_to_api(workflow: Mapping[str, Any], registry: NodeRegistry) -> dict[str, Any]:
    """Convert a UI-format workflow into an API-format prompt."""
    subgraphs = {str(sg["id"]): sg for sg in (workflow.get("definitions") or {}).get("subgraphs", [])}
    flat = _Flat()
    flat.add(workflow["nodes"], workflow.get("links", []), "", subgraphs)
    incoming: dict[tuple[str, int], tuple[str, int]] = {}
    for origin, o_slot, target, t_slot, _ in flat.links.values():
        incoming[(target, t_slot)] = (origin, o_slot)
    link_by_id = {link_id: (origin, o_slot) for link_id, (origin, o_slot, *_rest) in flat.links.items()}

    def resolve(origin: str, slot: int) -> tuple[str, Any] | None:
        """Follow reroutes and bypassed nodes to a real output; ("value", v) for a PrimitiveNode."""
        seen = set()
        while True:
            if (origin, slot) in seen:
                raise PromptFormatError(f"link loop through node {origin}")
            seen.add((origin, slot))
            node = flat.nodes.get(origin)
            if node is None or node.get("mode") == MODE_MUTED:
                return None
            kind = node.get("type")
            if kind == "PrimitiveNode":
                values = node.get("widgets_values") or []
                return ("value", values[0]) if values else None
            if kind == "Reroute" or node.get("mode") == MODE_BYPASS:
                upstream = _bypass_input(node, slot) if kind != "Reroute" else 0
                if upstream is None or (origin, upstream) not in incoming:
                    return None
                origin, slot = incoming[(origin, upstream)]
                continue
            return ("link", [origin, slot])

    prompt: dict[str, Any] = {}
    for node_id, node in flat.nodes.items():
        kind = node.get("type")
        if kind in DROPPED or kind in ("Reroute", "PrimitiveNode") or node.get("mode") in (MODE_MUTED, MODE_BYPASS):
            continue
        inputs = _widget_inputs(node, registry)
        for item in node.get("inputs") or []:
            link = item.get("link")
            if link is None:
                continue
            name = (item.get("widget") or {}).get("name") or item.get("name")
            link_key = f"{node['_prefix']}{link}"
            if link_key in flat.values:
                inputs[name] = flat.values[link_key]
                continue
            source = link_by_id.get(link_key)
            if source is None:
                continue  # a link the workflow does not list: unconnected, so a widget keeps its value
            found = resolve(*source)
            if found is None:
                inputs.pop(name, None)
            else:
                inputs[name] = found[1]
        entry: dict[str, Any] = {"class_type": kind, "inputs": inputs}
        title = node.get("title")
        if title:
            entry["_meta"] = {"title": title}
        prompt[node_id] = entry
    return prompt


def _promoted_values(node: Mapping[str, Any], definition: Mapping[str, Any], values: list[Any],
                     index_of: Any) -> dict[int, Any]:
    """The instance's widget values by definition input index.

    The frontend saves one value per widget-typed input of the definition, in the definition's order (a seed's
    ``control_after_generate`` choice after it); older files saved one per instance input marked ``widget``.
    """
    declared = definition.get("inputs") or []
    widget_inputs = [i for i, item in enumerate(declared) if str(item.get("type")) in WIDGET_TYPES]
    found: dict[int, Any] = {}
    index = 0
    for i in widget_inputs:
        if index >= len(values):
            break
        found[i] = values[index]
        index += 1
        if declared[i].get("type") == "INT" and index < len(values) and values[index] in CONTROL_VALUES:
            index += 1
    if index == len(values) and len(found) == len(widget_inputs):
        return found
    marked = [(slot, item) for slot, item in enumerate(node.get("inputs") or []) if item.get("widget")]
    return {index_of(slot, item): values[n] for n, (slot, item) in enumerate(marked) if n < len(values)}


def _bypass_input(node: Mapping[str, Any], slot: int) -> int | None:
    """A bypassed node passes through the input whose type matches the output (same index first)."""
    outputs = node.get("outputs") or []
    inputs = node.get("inputs") or []
    wanted = outputs[slot].get("type") if slot < len(outputs) else None
    if slot < len(inputs) and inputs[slot].get("type") == wanted:
        return slot
    for index, item in enumerate(inputs):
        if item.get("type") == wanted:
            return index
    return None


def _widget_inputs(node: Mapping[str, Any], registry: NodeRegistry) -> dict[str, Any]:
    values = node.get("widgets_values")
    kind = node.get("type")
    if values is None or kind not in registry:
        return {}
    try:
        specs = [s for s in registry[kind].inputs().specs.values() if s.section != "hidden"]
    except NodeDefinitionError:
        return {}
    widgets = [s for s in specs if s.is_widget or s.type == DYNAMIC_COMBO or _converted(node, s.name)]
    if isinstance(values, Mapping):
        return {s.name: values[s.name] for s in widgets if s.name in values}
    inputs: dict[str, Any] = {}
    index = 0
    for spec in widgets:
        if index >= len(values):
            # An older file saved fewer widgets than the node has now: the frontend gives the rest their defaults.
            if "default" in spec.options:
                inputs[spec.name] = spec.options["default"]
            continue
        inputs[spec.name] = values[index]
        index += 1
        if spec.type == DYNAMIC_COMBO:
            index = _dynamic_combo_values(spec.name, values[index - 1], spec.options, values, index, inputs)
            continue
        if spec.type == "BOUNDING_BOX" and spec.options.get("component"):
            index += BOX_EDITOR_VALUES  # the box editor's own fields follow its value; they are no inputs
            continue
        control = spec.options.get("control_after_generate", spec.name in ("seed", "noise_seed"))
        if spec.type == "INT" and control and index < len(values) and values[index] in CONTROL_VALUES:
            index += 1
    return inputs


def _dynamic_combo_values(name: str, chosen: Any, options: Mapping[str, Any], values: list[Any], index: int,
                          inputs: dict[str, Any]) -> int:
    """Read a V3 DynamicCombo's widgets: the frontend saves the chosen option's widget inputs right after its key,
    in the option's order, and the API names them ``"combo.child"`` (nested combos ``"combo.child.grandchild"``).
    Returns the index of the next value."""
    option = next((o for o in options.get("options") or () if isinstance(o, Mapping) and o.get("key") == chosen), {})
    sections = option.get("inputs") or {}
    for section in ("required", "optional"):
        for child, raw in (sections.get(section) or {}).items():
            kind = raw[0] if isinstance(raw, (list, tuple)) and raw else raw
            extra = raw[1] if isinstance(raw, (list, tuple)) and len(raw) > 1 and isinstance(raw[1], Mapping) else {}
            is_combo = isinstance(kind, (list, tuple))
            if not (is_combo or kind in WIDGET_TYPES or kind == DYNAMIC_COMBO) or index >= len(values):
                continue
            key = f"{name}.{child}"
            inputs[key] = values[index]
            index += 1
            if kind == DYNAMIC_COMBO:
                index = _dynamic_combo_values(key, inputs[key], extra, values, index, inputs)
    return index


def _converted(node: Mapping[str, Any], name: str) -> bool:
    return any((item.get("widget") or {}).get("name") == name for item in node.get("inputs") or [])
