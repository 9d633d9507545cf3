"""What a workflow needs that an environment lacks: its node classes, and the registry packs that provide them.

`comfy install --workflow FILE` uses the two steps here: :func:`missing_node_classes` (the classes the workflow uses
that neither Hearth's builtins nor the environment's packs provide) and :func:`packs_for_classes` (the registries'
node-class index, asked in priority order, so a class a private registry knows is never taken from a public one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hearth.core.executor.workflow import DROPPED, WorkflowFileError, is_ui_workflow, read_workflow_file
from hearth.registry.client import RegistryClient
from hearth.registry.config import Index

# Frontend-only nodes of UI-format workflows: the frontend resolves them, no pack provides them.
FRONTEND_ONLY = DROPPED | {"Reroute", "PrimitiveNode"}


class WorkflowError(ValueError):
    """The workflow file cannot be read as a workflow; the message names the file and what is wrong."""


def read_workflow(path: str | Path) -> Any:
    try:
        return read_workflow_file(path)
    except WorkflowFileError as exc:
        raise WorkflowError(str(exc)) from None


def workflow_node_classes(data: Any, source: str = "workflow") -> set[str]:
    """Every node class a workflow uses, in either format (subgraphs included, frontend-only nodes left out).

    Muted and bypassed nodes count: they are part of the workflow, and turning them back on must not fail.
    """
    if is_ui_workflow(data):
        subgraphs = (data.get("definitions") or {}).get("subgraphs") or []
        subgraph_ids = {str(sg.get("id")) for sg in subgraphs if isinstance(sg, Mapping)}
        nodes = list(data["nodes"])
        for sg in subgraphs:
            if isinstance(sg, Mapping):
                nodes += list(sg.get("nodes") or [])
        classes = set()
        for i, node in enumerate(nodes):
            kind = node.get("type") if isinstance(node, Mapping) else None
            if not isinstance(kind, str) or not kind:
                raise WorkflowError(f"{source}: node {i} ({_node_id(node)}) has no type")
            if kind not in FRONTEND_ONLY and kind not in subgraph_ids:
                classes.add(kind)
        return classes
    if isinstance(data, Mapping) and isinstance(data.get("prompt"), Mapping) and "class_type" not in data:
        data = data["prompt"]  # a saved /prompt request body: {"prompt": {...}, "extra_data": {...}}
    if not isinstance(data, Mapping) or not data:
        raise WorkflowError(f"{source}: not a workflow (expected ComfyUI's API format, an object of nodes with "
                            "class_type, or its UI format, with nodes and links)")
    classes = set()
    for node_id, node in data.items():
        kind = node.get("class_type") if isinstance(node, Mapping) else None
        if not isinstance(kind, str) or not kind:
            raise WorkflowError(f"{source}: node {node_id} has no class_type")
        classes.add(kind)
    return classes


def _node_id(node: Any) -> str:
    return f"id {node.get('id')}" if isinstance(node, Mapping) else "not an object"


# Run in a separate Python: loading an environment's plugins puts its folders on the import path, which must not
# happen to the process that is about to change that environment.
_LIST_NODES = """
import json, sys
from hearth.core.plugins import PluginManager
site_packages, custom_nodes = sys.argv[1], sys.argv[2]
manager = PluginManager().load(custom_nodes=[custom_nodes], site_packages=[site_packages])
print(json.dumps(sorted(manager.nodes().object_info())))
"""


def environment_node_classes(env: Any) -> set[str]:
    """The node classes an environment provides: Hearth's builtins plus its packs and its custom_nodes/ packs."""
    root = Path(__file__).resolve().parents[2]  # the folder holding the hearth package
    paths = env.paths() if hasattr(env, "paths") else env  # one generation's folders, read once
    done = subprocess.run([sys.executable, "-c", _LIST_NODES, str(paths.site_packages), str(paths.custom_nodes)],
                          capture_output=True, text=True, cwd=root, timeout=600, env=_child_environ(root))
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"could not list the nodes of environment {getattr(env, 'name', env)!r}: {last}")
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _child_environ(root: Path) -> dict[str, str]:
    paths = [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def missing_node_classes(workflow_path: str | Path, env: Any) -> set[str]:
    """The node classes `workflow_path` uses that environment `env` does not provide."""
    used = workflow_node_classes(read_workflow(workflow_path), str(workflow_path))
    return used - environment_node_classes(env)


def packs_for_classes(classes: Iterable[str], indexes: list[Index]) -> tuple[dict[str, str], list[str]]:
    """({node class: pack id}, [classes no registry provides]), asking the registries in priority order.

    The first registry whose node-class index knows a class decides it, as with pack names: a class a private
    registry provides is never taken from a public one. Among several packs on that registry, one already chosen
    for another class of the workflow wins, then the most downloaded, then the first by id. A registry that
    cannot be reached raises :class:`hearth.registry.client.RegistryError`: it might be the one that owns the class.
    """
    found: dict[str, str] = {}
    missing: list[str] = []
    clients = [RegistryClient(r.url, r.token) for r in indexes]
    try:
        for cls in sorted(set(classes)):
            for client in clients:
                candidates = client.packs_for_node_class(cls)
                if candidates:
                    chosen = set(found.values())
                    best = min(candidates, key=lambda p: (p["id"] not in chosen, -int(p.get("downloads") or 0),
                                                          p["id"]))
                    found[cls] = best["id"]
                    break
            else:
                missing.append(cls)
    finally:
        for client in clients:
            client.__exit__()
    return found, missing
