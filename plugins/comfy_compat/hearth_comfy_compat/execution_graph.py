"""ComfyUI's ``comfy_execution.graph`` and ``graph_utils``: ExecutionBlocker and the GraphBuilder packs use to
return node expansions (``{"expand": builder.finalize(), "result": (node.out(0),)}``), which Hearth's executor
runs as it runs ComfyUI's; ``DynamicPrompt`` (what a ``DYNPROMPT`` hidden input receives: Hearth's executor's own,
with ComfyUI's method names) and ``get_input_info``."""

from __future__ import annotations

import itertools
from typing import Any

from hearth.core.executor.graph import DynamicPrompt, is_link
from hearth.core.types import ExecutionBlocker

__all__ = ["DynamicPrompt", "ExecutionBlocker", "GraphBuilder", "Node", "get_input_info", "is_link"]


def get_input_info(class_def: Any, input_name: str,
                   valid_inputs: dict[str, Any] | None = None) -> tuple[Any, str | None, dict[str, Any] | None]:
    """``(type, "required" | "optional" | "hidden", options)`` of a node class's input, or ``(None, None, None)``
    when the class has no such input."""
    valid_inputs = valid_inputs if valid_inputs is not None else class_def.INPUT_TYPES()
    for category in ("required", "optional", "hidden"):
        section = valid_inputs.get(category) or {}
        if input_name not in section:
            continue
        spec = section[input_name]
        if category == "hidden" or isinstance(spec, str):
            return spec, category, {}
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        return spec[0], category, options
    return None, None, None

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
