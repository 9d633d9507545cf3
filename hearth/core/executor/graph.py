"""The prompt graph: API-format workflows parsed into nodes and links, plus nodes added at run time by expansion."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple


class Link(NamedTuple):
    """An input fed by output ``slot`` of node ``node``; written ``["node", slot]`` in the API format."""

    node: str
    slot: int


@dataclass
class PromptNode:
    """One node of a prompt: its class and inputs (literal values or :class:`Link`)."""

    id: str
    class_type: str
    inputs: dict[str, Any]
    title: str | None = None

    def to_api(self) -> dict[str, Any]:
        inputs = {k: list(v) if isinstance(v, Link) else _wrap_list(v) for k, v in self.inputs.items()}
        out: dict[str, Any] = {"class_type": self.class_type, "inputs": inputs}
        if self.title:
            out["_meta"] = {"title": self.title}
        return out


class PromptFormatError(ValueError):
    """The prompt is not a valid API-format workflow; the message names the node at fault."""


def is_link(value: Any) -> bool:
    """A two-item list ``[node_id, slot]`` is a link (a widget list value arrives as ``{"__value__": [...]}``)."""
    return (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def _wrap_list(value: Any) -> Any:
    return {"__value__": value} if isinstance(value, list) else value


def parse_value(value: Any) -> Any:
    if isinstance(value, Link):
        return value
    if is_link(value):
        return Link(str(value[0]), int(value[1]))
    if isinstance(value, Mapping) and set(value) == {"__value__"}:
        return value["__value__"]
    return value


def parse_prompt(data: Any) -> dict[str, PromptNode]:
    """Parse an API-format prompt ``{node_id: {"class_type", "inputs"}}``."""
    if not isinstance(data, Mapping):
        raise PromptFormatError(f"a prompt must be a JSON object of nodes, got {type(data).__name__}")
    nodes: dict[str, PromptNode] = {}
    for raw_id, node in data.items():
        node_id = str(raw_id)
        if not isinstance(node, Mapping):
            raise PromptFormatError(f"node {node_id}: expected an object with class_type and inputs")
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            raise PromptFormatError(f"node {node_id}: missing the class_type property")
        inputs = node.get("inputs", {})
        if not isinstance(inputs, Mapping):
            raise PromptFormatError(f"node {node_id} ({class_type}): inputs must be an object")
        title = (node.get("_meta") or {}).get("title") if isinstance(node.get("_meta"), Mapping) else None
        nodes[node_id] = PromptNode(node_id, class_type, {str(k): parse_value(v) for k, v in inputs.items()}, title)
    return nodes


class DynamicPrompt:
    """The prompt as it grows during execution: original nodes plus ephemeral nodes from expansion.

    ComfyUI hands this object to nodes that ask for the ``DYNPROMPT`` hidden input; its method names match.
    """

    def __init__(self, nodes: Mapping[str, PromptNode], original: Mapping[str, Any] | None = None) -> None:
        self._nodes = dict(nodes)
        self._original = original if original is not None else {k: n.to_api() for k, n in nodes.items()}
        self._ephemeral: dict[str, PromptNode] = {}
        self._parents: dict[str, str] = {}
        self._display: dict[str, str] = {}

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._nodes or node_id in self._ephemeral

    def __iter__(self) -> Iterator[str]:
        yield from self._nodes
        yield from self._ephemeral

    def node(self, node_id: str) -> PromptNode:
        found = self._nodes.get(node_id) or self._ephemeral.get(node_id)
        if found is None:
            raise KeyError(f"node {node_id} is not in the prompt")
        return found

    def get_node(self, node_id: str) -> dict[str, Any]:
        return self.node(node_id).to_api()

    def has_node(self, node_id: str) -> bool:
        return node_id in self

    def get_original_prompt(self) -> Mapping[str, Any]:
        return self._original

    def add_ephemeral_node(self, node: PromptNode, parent_id: str, display_id: str) -> None:
        if node.id in self:
            raise PromptFormatError(f"node {parent_id} expanded into node id {node.id!r}, which already exists")
        self._ephemeral[node.id] = node
        self._parents[node.id] = parent_id
        self._display[node.id] = display_id

    def get_parent_node_id(self, node_id: str) -> str | None:
        return self._parents.get(node_id)

    def get_real_node_id(self, node_id: str) -> str:
        while node_id in self._parents:
            node_id = self._parents[node_id]
        return node_id

    def get_display_node_id(self, node_id: str) -> str:
        return self._display.get(node_id, node_id)

    def all_node_ids(self) -> set[str]:
        return set(self._nodes) | set(self._ephemeral)
