"""The samplers and schedules installed in this process, as nodes list them: every pack's, through the plugin
manager (this pack's own are in :mod:`.catalog`).

Torch-free, so node modules can build their input lists without importing the samplers themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _merged(kind: str) -> dict[str, Callable[..., Any]]:
    from hearth.core.plugins import active_plugins

    manager = active_plugins()
    if manager is None:
        # This pack used as a library, without a loaded plugin manager: only its own are known.
        from .catalog import SAMPLERS, SCHEDULERS

        return dict(SAMPLERS if kind == "sampler" else SCHEDULERS)
    return manager.samplers() if kind == "sampler" else manager.schedulers()


def sampler_names() -> list[str]:
    return list(_merged("sampler"))


def scheduler_names() -> list[str]:
    return list(_merged("scheduler"))


def lookup(kind: str, name: str) -> Callable[..., Any]:
    """The ``kind`` ("sampler" or "scheduler") registered under ``name`` by any pack."""
    found = _merged(kind)
    if name not in found:
        raise ValueError(f"unknown {kind} {name!r}; installed {kind}s: {', '.join(sorted(found))}")
    return found[name]
