"""ComfyUI's ``comfy_execution.utils``: which prompt and node are running, for code deep inside a node.

:func:`get_executing_context` answers from Hearth's own record of the running node (``hearth.core.context``); a
pack may set one for code it runs itself with :class:`CurrentNodeContext`, which then takes precedence.
"""

from __future__ import annotations

import contextvars
from typing import Any, NamedTuple

from hearth.core import context


class ExecutionContext(NamedTuple):
    """The running prompt and node; ``list_index`` is the list item being processed (Hearth does not say which:
    None), ``expected_outputs`` the outputs used downstream (None: not known, any may be)."""

    prompt_id: str
    node_id: str
    list_index: int | None
    expected_outputs: frozenset[int] | None = None


current_executing_context: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar(
    "current_executing_context", default=None)


def get_executing_context() -> ExecutionContext | None:
    """The node running now (one a pack set with :class:`CurrentNodeContext` first), or None outside a node."""
    own = current_executing_context.get(None)
    if own is not None:
        return own
    running = context.current()
    if running is None:
        return None
    return ExecutionContext(prompt_id=running.prompt_id, node_id=running.node_id, list_index=None)


def is_output_needed(output_index: int) -> bool:
    """Whether output ``output_index`` of the running node may be used: True unless it is known not to be."""
    ctx = get_executing_context()
    return ctx is None or ctx.expected_outputs is None or output_index in ctx.expected_outputs


class CurrentNodeContext:
    """``with CurrentNodeContext(prompt_id, node_id):`` makes :func:`get_executing_context` answer that node."""

    def __init__(self, prompt_id: str, node_id: str, list_index: int | None = None,
                 expected_outputs: frozenset[int] | None = None) -> None:
        self.context = ExecutionContext(prompt_id, node_id, list_index, expected_outputs)
        self.token: contextvars.Token[Any] | None = None

    def __enter__(self) -> CurrentNodeContext:
        self.token = current_executing_context.set(self.context)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            current_executing_context.reset(self.token)
            self.token = None
