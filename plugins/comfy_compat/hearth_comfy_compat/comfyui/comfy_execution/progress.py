"""ComfyUI's ``comfy_execution.progress``: per-node progress of the running prompt, reported through Hearth.

``get_progress_state().update_progress(node_id, value, max_value, image)`` is how newer packs report progress;
for the node running now it becomes Hearth's ``progress`` event (with the image as the node's preview), which
the CLI's bar and the browser show, and it stops the node when the user interrupts, as ComfyUI's does. The
registry also keeps each node's state and tells the handlers a pack registers. Hearth reports progress itself,
so ComfyUI's own handlers (:class:`CLIProgressHandler`, :class:`WebUIProgressHandler`) do nothing here.
"""

from __future__ import annotations

import enum
import threading
from abc import ABC
from typing import Any, TypedDict

from hearth.core import context


class NodeState(enum.Enum):
    Pending = "pending"
    Running = "running"
    Finished = "finished"
    Error = "error"


class NodeProgressState(TypedDict):
    state: NodeState
    value: float
    max: float


class ProgressHandler(ABC):  # noqa: B024 - every method is an optional notification
    """Receives each node's progress; subclasses override the notifications they want."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.enabled = True

    def set_registry(self, registry: ProgressRegistry) -> None:  # noqa: B027
        """Called when the handler is added to a registry."""

    def start_handler(self, node_id: str, state: NodeProgressState, prompt_id: str) -> None:  # noqa: B027
        """A node started."""

    def update_handler(self, node_id: str, value: float, max_value: float, state: NodeProgressState,  # noqa: B027
                       prompt_id: str, image: Any = None) -> None:
        """A node's progress changed."""

    def finish_handler(self, node_id: str, state: NodeProgressState, prompt_id: str) -> None:  # noqa: B027
        """A node finished."""

    def reset(self) -> None:  # noqa: B027
        """The registry is being replaced."""

    def enable(self) -> None:
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False


class CLIProgressHandler(ProgressHandler):
    """ComfyUI's terminal bars; Hearth's CLI draws its own from the progress events, so this does nothing."""

    def __init__(self) -> None:
        super().__init__("cli")


class WebUIProgressHandler(ProgressHandler):
    """ComfyUI's WebSocket progress; Hearth's server sends progress events itself, so this does nothing."""

    def __init__(self, server_instance: Any = None) -> None:
        super().__init__("webui")
        self.server_instance = server_instance


class ProgressRegistry:
    """The progress of each node of one prompt, and the handlers told of it."""

    def __init__(self, prompt_id: str = "", dynprompt: Any = None) -> None:
        self.prompt_id = prompt_id
        self.dynprompt = dynprompt
        self.nodes: dict[str, NodeProgressState] = {}
        self.handlers: dict[str, ProgressHandler] = {}

    def register_handler(self, handler: ProgressHandler) -> None:
        self.handlers[handler.name] = handler

    def unregister_handler(self, handler_name: str) -> None:
        handler = self.handlers.pop(handler_name, None)
        if handler is not None:
            handler.reset()

    def enable_handler(self, handler_name: str) -> None:
        if handler_name in self.handlers:
            self.handlers[handler_name].enable()

    def disable_handler(self, handler_name: str) -> None:
        if handler_name in self.handlers:
            self.handlers[handler_name].disable()

    def ensure_entry(self, node_id: str) -> NodeProgressState:
        return self.nodes.setdefault(str(node_id), NodeProgressState(state=NodeState.Pending, value=0, max=1))

    def _handlers(self) -> list[ProgressHandler]:
        return [handler for handler in self.handlers.values() if handler.enabled]

    def start_progress(self, node_id: str) -> None:
        entry = self.ensure_entry(node_id)
        entry.update(state=NodeState.Running, value=0.0, max=1.0)
        for handler in self._handlers():
            handler.start_handler(str(node_id), entry, self.prompt_id)

    def update_progress(self, node_id: str, value: float, max_value: float, image: Any = None) -> None:
        """Record the node's progress; for the node running now, also Hearth's progress event (and the
        interrupt check)."""
        entry = self.ensure_entry(node_id)
        entry.update(state=NodeState.Running, value=value, max=max_value)
        for handler in self._handlers():
            handler.update_handler(str(node_id), value, max_value, entry, self.prompt_id, image)
        running = context.current()
        if running is not None and str(node_id) in (running.node_id, running.display_node_id):
            running.progress(value, max_value, image)

    def finish_progress(self, node_id: str) -> None:
        entry = self.ensure_entry(node_id)
        entry.update(state=NodeState.Finished, value=entry["max"])
        for handler in self._handlers():
            handler.finish_handler(str(node_id), entry, self.prompt_id)

    def reset_handlers(self) -> None:
        for handler in self.handlers.values():
            handler.reset()


_lock = threading.Lock()
_registries: dict[str, ProgressRegistry] = {}  # prompt id -> its registry (the latest few)
_handlers: list[ProgressHandler] = []  # added by packs; every prompt's registry tells them
_KEEP = 8


def _registry_for(prompt_id: str) -> ProgressRegistry:
    with _lock:
        registry = _registries.get(prompt_id)
        if registry is None:
            registry = _registries[prompt_id] = ProgressRegistry(prompt_id)
            for handler in _handlers:
                handler.set_registry(registry)
                registry.register_handler(handler)
            while len(_registries) > _KEEP:
                _registries.pop(next(iter(_registries)))
        return registry


def get_progress_state() -> ProgressRegistry:
    """The registry of the prompt running in this thread (outside a prompt, one shared registry)."""
    running = context.current()
    return _registry_for(running.prompt_id if running is not None else "")


def reset_progress_state(prompt_id: str, dynprompt: Any = None) -> None:
    """Start ``prompt_id`` with a fresh registry (its handlers told to reset first)."""
    with _lock:
        old = _registries.pop(prompt_id, None)
    if old is not None:
        old.reset_handlers()
    _registry_for(prompt_id).dynprompt = dynprompt


def add_progress_handler(handler: ProgressHandler) -> None:
    """Tell ``handler`` of every node's progress from now on."""
    with _lock:
        _handlers[:] = [h for h in _handlers if h.name != handler.name] + [handler]
        registries = list(_registries.values())
    for registry in registries:
        handler.set_registry(registry)
        registry.register_handler(handler)
