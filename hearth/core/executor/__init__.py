"""The graph executor: parse workflows, validate them, run them with caching, and queue them.

Importing this package does not import torch: nodes bring their own heavy dependencies. Its names load their
submodule on first use, so validating a prompt (``comfy run --check`` from the node catalogue) does not pay for
the execution engine's imports (asyncio and the rest).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hearth.core.executor.cache import make_cache
    from hearth.core.executor.execution import ExecutionResult, Executor
    from hearth.core.executor.graph import DynamicPrompt, Link, PromptFormatError, PromptNode, parse_prompt
    from hearth.core.executor.validation import ValidationResult, Validator

_HOMES = {"make_cache": "cache", "ExecutionResult": "execution", "Executor": "execution", "DynamicPrompt": "graph",
          "Link": "graph", "PromptFormatError": "graph", "PromptNode": "graph", "parse_prompt": "graph",
          "ValidationResult": "validation", "Validator": "validation"}

__all__ = [
    "DynamicPrompt", "ExecutionResult", "Executor", "Link", "PromptFormatError", "PromptNode", "ValidationResult",
    "Validator", "make_cache", "parse_prompt",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
        globals()[name] = value  # once loaded, a plain attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
