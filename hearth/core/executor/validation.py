"""Prompt validation with ComfyUI's error types and ``node_errors`` shape.

Each output node is checked with its ancestors; every node is checked once however many outputs share it. Outputs
whose whole subgraph is valid still run when another output fails. Walks are iterative (no recursion limit), and a
dependency cycle is reported with the nodes on it.

Everything here is linear in the size of the prompt, since a prompt is whatever a client sends: one walk (Tarjan's
strongly connected components) orders the nodes and finds every cycle, each cycle is reported once per node on it with
a bounded excerpt, and each failing node names at most :data:`MAX_DEPENDENT_OUTPUTS` of the outputs it blocks. (The
cycle and output lists in full are quadratic: 4,000 nodes on one ring made a 370 MB answer.)
"""

from __future__ import annotations

import inspect
import math
import traceback
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hearth.core.executor.graph import Link, PromptNode
from hearth.core.node_registry import NodeRegistry
from hearth.core.nodes import AUTOGROW, InputSpec, NodeDefinitionError, NodeInputs, types_match
from hearth.core.runtime import Runtime, activated

MAX_DEPENDENT_OUTPUTS = 50  # outputs named per failing node; the first ones, in the prompt's order
MAX_CYCLE_SHOWN = 20  # nodes of a cycle named in its error; longer cycles are shown as head ... tail
MAX_SUMMARY_LINES = 100  # lines of the top-level error's details; node_errors has them all


def error(kind: str, message: str, details: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


@dataclass
class ValidationResult:
    """The outcome, shaped as ComfyUI's ``/prompt`` answers it."""

    outputs: list[str] = field(default_factory=list)  # output nodes that will run
    node_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def response(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error, "node_errors": self.node_errors}
        return {"node_errors": self.node_errors}

    def first_problem(self) -> str:
        """One line naming the node, input and error type: what ``comfy run`` prints."""
        for node_id, entry in self.node_errors.items():
            for err in entry["errors"]:
                where = f"node {node_id} ({entry['class_type']})"
                name = err.get("extra_info", {}).get("input_name")
                if name:
                    where += f" input {name!r}"
                detail = f": {err['details']}" if err.get("details") else ""
                return f"{where}: {err['type']}: {err['message']}{detail}"
        if self.error is not None:
            detail = f": {self.error['details']}" if self.error.get("details") else ""
            return f"{self.error['type']}: {self.error['message']}{detail}"
        return ""


_CONVERTERS = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}


def _convert(kind: str, value: Any) -> Any:
    if kind == "INT":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value} is not a whole number")
        return int(value)
    if kind == "FLOAT":
        result = float(value)
        if math.isnan(result):
            raise ValueError("NaN is not a number")
        return result
    if kind == "BOOLEAN" and isinstance(value, str):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{value!r} is not true or false")
    return _CONVERTERS[kind](value)


class Validator:
    """Validates prompts against one node registry; ``INPUT_TYPES`` is read once per class per prompt.

    Safe to call from several threads at once: all per-prompt state is local to :meth:`validate`. Given a
    ``runtime``, validation runs inside it: ``INPUT_TYPES`` lists that Runtime's model folders and plugins' names.
    """

    def __init__(self, registry: NodeRegistry, runtime: Runtime | None = None) -> None:
        self.registry = registry
        self.runtime = runtime

    def validate(self, nodes: Mapping[str, PromptNode], targets: Iterable[str] | None = None) -> ValidationResult:
        with activated(self.runtime):
            return self._validate(nodes, targets)

    def _validate(self, nodes: Mapping[str, PromptNode], targets: Iterable[str] | None) -> ValidationResult:
        registry = self.registry
        for node in nodes.values():
            if node.class_type not in registry:
                return ValidationResult(error=error(
                    "invalid_prompt", f"Cannot execute because node {node.class_type} does not exist.",
                    f"Node ID '#{node.id}'"))
        if targets is None:
            outputs = [nid for nid, node in nodes.items() if registry[node.class_type].output_node]
        else:
            outputs = [str(t) for t in targets]
            missing = [t for t in outputs if t not in nodes]
            if missing:
                return ValidationResult(error=error(
                    "invalid_prompt", "Execution target is not in the prompt", f"Node ID '#{missing[0]}'"))
        if not outputs:
            return ValidationResult(error=error("prompt_no_outputs", "Prompt has no outputs"))

        declared: dict[str, NodeInputs | Exception] = {}  # INPUT_TYPES read once per class in this call
        valid: dict[str, bool] = {}
        errors: dict[str, list[dict[str, Any]]] = {}
        order, cycles, links = _walk(nodes, outputs)
        for root, members in cycles:
            problem = _cycle_error(_cycle_through(links, root, members))
            for member in members:
                errors[member] = [dict(problem)]
                valid[member] = False
        for node_id in order:
            if node_id not in valid:
                node_errors, parents_ok = self._check(nodes, nodes[node_id], valid, declared)
                if node_errors:
                    errors[node_id] = node_errors
                valid[node_id] = parents_ok and not node_errors
        good = [output for output in outputs if valid.get(output, False)]
        bad = [output for output in outputs if not valid.get(output, False)]

        result = ValidationResult(outputs=good)
        dependents = _dependent_outputs(links, bad)
        for node_id, node_errors in errors.items():
            if node_id in dependents:
                result.node_errors[node_id] = {"errors": node_errors, "dependent_outputs": dependents[node_id],
                                               "class_type": nodes[node_id].class_type}
        if not good:
            lines = [f"{e['type']}: {e['message']}" + (f": {e['details']}" if e["details"] else "")
                     for entry in result.node_errors.values() for e in entry["errors"]]
            if len(lines) > MAX_SUMMARY_LINES:
                lines[MAX_SUMMARY_LINES:] = [f"... and {len(lines) - MAX_SUMMARY_LINES} more (see node_errors)"]
            result.error = error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                                 "\n".join(lines))
        return result

    # -- one node --------------------------------------------------------------------------------------------

    def _node_inputs(self, class_type: str, cache: dict[str, NodeInputs | Exception]) -> NodeInputs | Exception:
        found = cache.get(class_type)
        if found is None:
            try:
                found = self.registry[class_type].inputs()
            except NodeDefinitionError as exc:
                found = exc
            cache[class_type] = found
        return found

    def _check(self, nodes: Mapping[str, PromptNode], node: PromptNode, valid: dict[str, bool],
               cache: dict[str, NodeInputs | Exception]) -> tuple[list[dict[str, Any]], bool]:
        registry = self.registry
        definition = registry[node.class_type]
        declared = self._node_inputs(node.class_type, cache)
        if isinstance(declared, Exception):
            return [error("exception_during_validation", "Exception when validating node", str(declared))], True
        errs: list[dict[str, Any]] = []
        parents_ok = True
        custom = getattr(definition.cls, "VALIDATE_INPUTS", None)
        custom_params = _parameters(custom) if custom is not None else set()
        received_types: dict[str, str] = {}
        for spec in declared.specs.values():
            if spec.section == "hidden":
                continue
            name = spec.name
            if name not in node.inputs:
                # A V3 Autogrow input is listed as required, but a prompt carries only its members ("values.a").
                if spec.section == "required" and spec.type != AUTOGROW:
                    errs.append(error("required_input_missing", "Required input is missing", name,
                                      input_name=name))
                continue
            value = node.inputs[name]
            config = [spec.type, dict(spec.options)]
            if isinstance(value, Link):
                source = nodes.get(value.node)
                if source is None:
                    errs.append(error("bad_linked_input", "Bad linked input: the linked node does not exist",
                                      f"{name}: node {value.node} is not in the prompt", input_name=name,
                                      input_config=config, received_value=list(value)))
                    continue
                output = registry[source.class_type].output_type(value.slot)
                if output is None:
                    count = len(registry[source.class_type].return_types)
                    errs.append(error("bad_linked_input", "Bad linked input: no such output slot",
                                      f"{name}: node {value.node} ({source.class_type}) has {count} "
                                      f"outputs, slot {value.slot} requested", input_name=name,
                                      input_config=config, received_value=list(value)))
                    continue
                received, received_object = output
                received_types[name] = received
                if "input_types" not in custom_params and not _link_accepted(registry, spec, received,
                                                                             received_object):
                    errs.append(error("return_type_mismatch", "Return type mismatch between linked nodes",
                                      f"{name}, received_type({received}) mismatch input_type({spec.type})",
                                      input_name=name, input_config=config, received_type=received,
                                      linked_node=list(value)))
                if not valid.get(value.node, False):
                    parents_ok = False
                continue
            if name in custom_params or "**" in custom_params:
                continue  # the node validates this input itself (ComfyUI semantics)
            problem, value = _check_literal(spec, value)
            if problem is not None:
                errs.append(problem | {"extra_info": {"input_name": name, "input_config": config,
                                                      "received_value": node.inputs[name]}})
            else:
                node.inputs[name] = value
        if custom is not None and not errs:
            errs.extend(_run_custom(node, custom, custom_params, received_types))
        return errs, parents_ok


def _link_accepted(registry: NodeRegistry, spec: InputSpec, received: str, received_object: Any) -> bool:
    """Whether an output of type ``received`` may feed ``spec``: by the type names (the registry's rule, with the
    declared data types' ``accepts``), or, where a pack's type object has comparison rules of its own (the
    pack's ``received_object`` or ``spec.declared``), by ComfyUI's ``not received != expected`` on the objects."""
    if registry.accepts(spec.type, received):
        return True
    if received_object is None and spec.declared is None:
        return False
    return types_match(received if received_object is None else received_object,
                       spec.type if spec.declared is None else spec.declared)


def _check_literal(spec: Any, value: Any) -> tuple[dict[str, Any] | None, Any]:
    kind = spec.type
    if kind in _CONVERTERS:
        try:
            value = _convert(kind, value)
        except (TypeError, ValueError) as exc:
            return error("invalid_input_type", f"Failed to convert an input value to a {kind} value",
                         f"{spec.name}, {value!r}, {exc}"), value
        if kind in ("INT", "FLOAT"):
            low, high = spec.options.get("min"), spec.options.get("max")
            if low is not None and value < low:
                return error("value_smaller_than_min", f"Value {value} smaller than min of {low}", spec.name), value
            if high is not None and value > high:
                return error("value_bigger_than_max", f"Value {value} bigger than max of {high}", spec.name), value
    elif kind == "COMBO" and spec.choices is not None:
        if isinstance(value, list) and spec.options.get("multi_select"):
            bad = [v for v in value if v not in spec.choices]
        else:
            bad = [] if _in_choices(value, spec.choices) else [value]
        if bad:
            shown = list(spec.choices[:20]) + (["..."] if len(spec.choices) > 20 else [])
            hint = "" if spec.choices else " (the list is empty: are the files it lists, e.g. models, in place?)"
            return error("value_not_in_list", "Value not in list",
                         f"{spec.name}: '{bad[0]}' not in {shown}{hint}"), value
    return None, value


def _in_choices(value: Any, choices: tuple[Any, ...]) -> bool:
    try:
        return value in choices
    except TypeError:
        return False


def _parameters(fn: Any) -> set[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    names = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        names.add("**")
    return names - {"self", "cls", "s"}


def _run_custom(node: PromptNode, custom: Any, params: set[str],
                received_types: dict[str, str]) -> list[dict[str, Any]]:
    kwargs = {k: v for k, v in node.inputs.items()
              if not isinstance(v, Link) and ("**" in params or k in params)}
    if "input_types" in params:
        kwargs["input_types"] = received_types
    try:
        result = custom(**kwargs)
    except Exception as exc:
        return [error("exception_during_validation", "Exception when validating node", str(exc),
                      exception_type=type(exc).__name__, traceback=traceback.format_exc().splitlines())]
    if result is True:
        return []
    return [error("custom_validation_failed", "Custom validation failed for node", f"{', '.join(kwargs)} - {result}",
                  input_name=next(iter(kwargs), None))]


# -- graph walks (all iterative and linear) ----------------------------------------------------------------------


def _parents(nodes: Mapping[str, PromptNode], node_id: str) -> list[str]:
    return [v.node for v in nodes[node_id].inputs.values() if isinstance(v, Link) and v.node in nodes]


def _walk(nodes: Mapping[str, PromptNode],
          roots: Iterable[str]) -> tuple[list[str], list[tuple[str, set[str]]], dict[str, list[str]]]:
    """The ancestors of ``roots`` parents first, each dependency cycle as (first node reached, its members), and
    the parents of every node reached.

    Tarjan's algorithm: components come out parents first, and a component of more than one node (or a node linked
    to itself) is a set of nodes that each lie on a cycle. One pass over nodes and links.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    component: list[str] = []
    order: list[str] = []
    cycles: list[tuple[str, set[str]]] = []
    links: dict[str, list[str]] = {}

    def enter(node_id: str) -> tuple[str, Any]:
        index[node_id] = low[node_id] = len(index)
        component.append(node_id)
        on_stack.add(node_id)
        links[node_id] = _parents(nodes, node_id)
        return node_id, iter(links[node_id])

    for root in roots:
        if root in index:
            continue
        work = [enter(root)]
        while work:
            node_id, parents = work[-1]
            for parent in parents:
                if parent not in index:
                    work.append(enter(parent))
                    break
                if parent in on_stack:
                    low[node_id] = min(low[node_id], index[parent])
            else:
                work.pop()
                if work:
                    child = work[-1][0]
                    low[child] = min(low[child], low[node_id])
                if low[node_id] == index[node_id]:
                    members: set[str] = set()
                    while True:
                        member = component.pop()
                        on_stack.discard(member)
                        members.add(member)
                        order.append(member)
                        if member == node_id:
                            break
                    if len(members) > 1 or node_id in links[node_id]:
                        cycles.append((node_id, members))
    return order, cycles, links


def _cycle_through(links: Mapping[str, list[str]], root: str, members: set[str]) -> list[str]:
    """A shortest cycle from ``root`` back to itself along input links inside ``members`` (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([root])
    while queue:
        node_id = queue.popleft()
        for parent in links[node_id]:
            if parent == root:
                path = [node_id]
                while path[-1] != root:
                    path.append(came_from[path[-1]])
                return [*reversed(path), root]
            if parent in members and parent not in came_from:
                came_from[parent] = node_id
                queue.append(parent)
    raise AssertionError(f"node {root} is in a strongly connected component but on no cycle")


def _cycle_error(cycle: list[str]) -> dict[str, Any]:
    length = len(cycle) - 1
    shown = cycle
    if length > MAX_CYCLE_SHOWN:
        half = MAX_CYCLE_SHOWN // 2
        shown = [*cycle[:half], f"... {length + 1 - 2 * half} more ...", *cycle[-half:]]
    return error("dependency_cycle", "Dependency cycle detected", " -> ".join(shown), cycle=shown,
                 cycle_length=length)


def _dependent_outputs(links: Mapping[str, list[str]], outputs: list[str]) -> dict[str, list[str]]:
    """For every ancestor of ``outputs``: the first :data:`MAX_DEPENDENT_OUTPUTS` of them that depend on it.

    Outputs are walked in order and a walk stops at a node that already has its fill: that node's ancestors have
    every output it has, so they are full too. Each node takes at most that many outputs and passes each one to its
    parents once, so the walks are linear in the prompt's links.
    """
    found: dict[str, list[str]] = {}
    for output in outputs:
        stack = [output]
        while stack:
            node_id = stack.pop()
            taken = found.setdefault(node_id, [])
            if len(taken) >= MAX_DEPENDENT_OUTPUTS or (taken and taken[-1] == output):
                continue
            taken.append(output)
            stack.extend(links[node_id])
    return found
