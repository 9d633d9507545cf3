"""ComfyUI's ``comfy_execution.graph`` and ``graph_utils``: ExecutionBlocker and the GraphBuilder packs use to
return node expansions (``{"expand": builder.finalize(), "result": (node.out(0),)}``), which Hearth's executor
runs as it runs ComfyUI's."""

from __future__ import annotations

import itertools
from typing import Any

from hearth.core.executor.graph import is_link
from hearth.core.types import ExecutionBlocker

__all__ = ["ExecutionBlocker", "GraphBuilder", "Node", "is_link"]

_prefixes = itertools.count()


class Node:
    """One node of a graph being built; ``out(i)`` is a link to its output ``i``."""

    def __init__(self, node_id: str, class_type: str, inputs: dict[str, Any]) -> None:
        self.id = node_id
        self.class_type = class_type
        self.inputs = inputs
        self.override_display_id: str | None = None

    def out(self, index: int) -> list[Any]:
        return [self.id, index]

    def set_input(self, key: str, value: Any) -> None:
        if value is None:
            self.inputs.pop(key, None)
        else:
            self.inputs[key] = value

    def get_input(self, key: str) -> Any:
        return self.inputs.get(key)

    def set_override_display_id(self, override_display_id: str) -> None:
        self.override_display_id = override_display_id

    def serialize(self) -> dict[str, Any]:
        data: dict[str, Any] = {"class_type": self.class_type, "inputs": self.inputs}
        if self.override_display_id is not None:
            data["override_display_id"] = self.override_display_id
        return data


class GraphBuilder:
    """Builds an API-format graph whose node ids are unique to this builder (its prefix), so two expansions of
    one node, or of two nodes, never collide."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix if prefix is not None else f"{next(_prefixes)}."
        self.nodes: dict[str, Node] = {}
        self._ids = itertools.count()

    @classmethod
    def set_default_prefix(cls, prefix_root: Any, call_index: Any, graph_index: int = 0) -> None:
        """Hearth renames expanded nodes itself (``<node>.<call>.<child>``), so the prefix only has to be unique
        within one builder; accepted for packs that call it."""

    def node(self, class_type: str, id: str | None = None, **kwargs: Any) -> Node:
        node_id = self.prefix + (str(id) if id is not None else str(next(self._ids)))
        if node_id in self.nodes:
            return self.nodes[node_id]
        node = Node(node_id, class_type, dict(kwargs))
        self.nodes[node_id] = node
        return node

    def lookup_node(self, id: str) -> Node | None:
        return self.nodes.get(self.prefix + str(id))

    def remove_node(self, id: str) -> None:
        self.nodes.pop(self.prefix + str(id), None)

    def finalize(self) -> dict[str, dict[str, Any]]:
        return {node_id: node.serialize() for node_id, node in self.nodes.items()}
