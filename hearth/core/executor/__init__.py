"""The graph executor: parse workflows, validate them, run them with caching, and queue them.

Importing this package does not import torch: nodes bring their own heavy dependencies.
"""

from hearth.core.executor.cache import make_cache
from hearth.core.executor.execution import ExecutionResult, Executor
from hearth.core.executor.graph import DynamicPrompt, Link, PromptFormatError, PromptNode, parse_prompt
from hearth.core.executor.validation import ValidationResult, Validator

__all__ = [
    "DynamicPrompt", "ExecutionResult", "Executor", "Link", "PromptFormatError", "PromptNode", "ValidationResult",
    "Validator", "make_cache", "parse_prompt",
]
