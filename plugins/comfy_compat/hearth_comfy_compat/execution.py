"""ComfyUI's ``execution`` module, the parts that map onto Hearth's executor: ``PromptExecutor``,
``validate_prompt``, ``ExecutionResult``, ``CacheType``, the prompt queue class and the helpers error reports use.

Packs use these to run or check a whole prompt from inside a node or a route (batch runners, workflow
validators). Both work on the node registry of the loaded plugins. ComfyUI's internals that patch its own
execution loop (``execution.get_input_data``, ``IsChangedCache``...) have no Hearth counterpart and are
reported as missing by the import hook.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from typing import Any


class ExecutionResult(enum.Enum):
    SUCCESS = 0
    FAILURE = 1
    PENDING = 2


class CacheType(enum.Enum):
    """ComfyUI's cache strategies; :class:`PromptExecutor` accepts one and runs with Hearth's classic cache."""

    CLASSIC = 0
    LRU = 1
    NONE = 2
    RAM_PRESSURE = 3


class DuplicateNodeError(Exception):
    """An expansion produced a node id that is already in the prompt."""


MAXIMUM_HISTORY_SIZE = 10000
# extra_data keys never stored in history (credentials sent with a prompt).
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


def full_type_name(klass: type) -> str:
    """``module.QualName`` of a class, or the bare name for builtins (error reports name exception types so)."""
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def format_value(value: Any) -> Any:
    """A value as an error report shows it: plain values as they are, anything else as its ``str``."""
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)


def __getattr__(name: str) -> Any:
    # Names defined elsewhere, loaded on first use: the prompt queue lives with the server, the type check with
    # comfy_execution.validation.
    if name == "PromptQueue":
        from hearth_comfy_compat.server import PromptQueue

        return PromptQueue
    if name == "validate_node_input":
        from hearth_comfy_compat.comfyui.comfy_execution.validation import validate_node_input

        return validate_node_input
    raise AttributeError(name)


def _registry() -> Any:
    from hearth.core.plugins import active_plugins

    plugins = active_plugins()
    if plugins is None:
        raise RuntimeError("execution: no plugins are loaded in this process, so there is no node to run")
    return plugins


class PromptExecutor:
    """Runs API-format prompts to completion on the loaded plugins' nodes (ComfyUI's ``PromptExecutor``).

    After :meth:`execute`: ``success``, ``history_result`` (``{"outputs": {node: ui}, "meta": {}}``) and
    ``status_messages`` (``[(event, data), ...]``). ``server`` (any object with ``send_sync(event, data, sid)``)
    receives the events as they happen.
    """

    def __init__(self, server: Any = None, cache_type: Any = False, cache_args: Any = None) -> None:
        from hearth.core.executor import Executor

        plugins = _registry()
        self.server = server
        self.executor = Executor(plugins.nodes(), cache="classic", plugins=plugins)
        self.reset()

    def reset(self) -> None:
        self.success = True
        self.status_messages: list[tuple[str, dict[str, Any]]] = []
        self.history_result: dict[str, Any] = {}

    def add_message(self, event: str, data: dict[str, Any], broadcast: bool = False) -> None:
        self.status_messages.append((event, data))
        send = getattr(self.server, "send_sync", None)
        if callable(send):
            send(event, data, getattr(self.server, "client_id", None))

    def handle_execution_error(self, prompt_id: str, prompt: Mapping[str, Any], current_outputs: Any,
                               executed: Any, error: Mapping[str, Any], ex: BaseException) -> None:
        """Report a node's failure as ComfyUI does: ``execution_interrupted`` for an interrupt, else
        ``execution_error`` naming the node, the exception and its traceback. Packs wrap this method to react to
        failures (Impact Pack's error signals)."""
        from hearth.core.context import InterruptProcessing

        node_id = error.get("node_id")
        node_type = (prompt.get(node_id) or {}).get("class_type") if node_id is not None else None
        base = {"prompt_id": prompt_id, "node_id": node_id, "node_type": node_type, "executed": list(executed or ())}
        if isinstance(ex, InterruptProcessing):
            self.add_message("execution_interrupted", base, broadcast=True)
            return
        self.add_message("execution_error", {
            **base, "exception_message": error.get("exception_message", str(ex)),
            "exception_type": error.get("exception_type", full_type_name(type(ex))),
            "traceback": error.get("traceback", []), "current_inputs": error.get("current_inputs", {}),
            "current_outputs": list(current_outputs or ())}, broadcast=False)

    def execute(self, prompt: Mapping[str, Any], prompt_id: str | None = None,
                extra_data: Mapping[str, Any] | None = None, execute_outputs: list[str] | None = None) -> None:
        self.reset()
        result = self.executor.run(prompt, prompt_id=prompt_id or str(uuid.uuid4()), extra_data=extra_data or {},
                                   targets=list(execute_outputs) if execute_outputs else None, emit=self.add_message)
        self.success = result.ok
        if result.validation is not None and not result.validation.ok:
            self.add_message("execution_error", {"prompt_id": result.prompt_id, "node_id": None,
                                                 "exception_message": result.validation.first_problem(),
                                                 "exception_type": "ValidationError"})
        self.history_result = {"outputs": result.outputs, "meta": {}}


async def validate_prompt(prompt_id: str, prompt: Mapping[str, Any],
                          partial_execution_list: list[str] | None = None) -> tuple[bool, Any, list[str], dict]:
    """``(valid, error, outputs that will run, node_errors)`` for an API-format prompt, as ``/prompt`` checks it."""
    from hearth.core.executor import PromptFormatError, Validator, parse_prompt

    try:
        nodes = parse_prompt(prompt)
    except PromptFormatError as exc:
        return False, {"type": "invalid_prompt", "message": str(exc), "details": "", "extra_info": {}}, [], {}
    result = Validator(_registry().nodes()).validate(nodes, partial_execution_list or None)
    return result.ok, result.error, list(result.outputs), result.node_errors
