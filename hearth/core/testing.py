"""Pytest fixtures for plugin authors (registered as the ``hearth`` pytest11 plugin).

``hearth_plugins`` is a fully loaded plugin manager; ``register_plugin`` registers a test plugin for one test
and always unregisters it; ``run_prompt`` validates and executes an API-format prompt with fresh folders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.core.context import Folders
from hearth.core.plugins import PluginManager, load_plugins


@pytest.fixture
def hearth_plugins() -> PluginManager:
    """Every tier loaded from this environment (entry points included), without custom_nodes folders."""
    return load_plugins(environ={})


@pytest.fixture
def register_plugin(hearth_plugins: PluginManager) -> Iterator[Callable[..., Any]]:
    """``register_plugin(obj, name, tier="installed")`` for the duration of one test."""
    names: list[str] = []

    def register(plugin: Any, name: str, tier: str = "installed") -> Any:
        record = hearth_plugins.register(plugin, name, tier)
        names.append(name)
        return record

    try:
        yield register
    finally:
        for name in names:
            hearth_plugins.unregister(name)


@pytest.fixture
def hearth_folders(tmp_path: Path) -> Folders:
    folders = Folders(output=tmp_path / "output", input=tmp_path / "input", temp=tmp_path / "temp")
    for path in (folders.output, folders.input, folders.temp):
        path.mkdir(parents=True, exist_ok=True)
    return folders


@pytest.fixture
def run_prompt(hearth_plugins: PluginManager, hearth_folders: Folders) -> Iterator[Callable[..., Any]]:
    """``run_prompt(prompt, cache="classic", **run_kwargs) -> ExecutionResult``: one executor per test and cache."""
    from hearth.core import context
    from hearth.core.executor import Executor

    executors: dict[str, Executor] = {}

    def run(prompt: dict[str, Any], cache: str = "classic", **kwargs: Any) -> Any:
        # One executor per cache strategy for the whole test, so caching across runs can be tested too.
        executor = executors.get(cache)
        if executor is None:
            executor = executors[cache] = Executor(hearth_plugins.nodes(), cache=cache, folders=hearth_folders,
                                                   plugins=hearth_plugins)
        return executor.run(prompt, **kwargs)

    previous = context.folders()
    context.set_default_folders(hearth_folders)
    try:
        yield run
    finally:
        context.set_default_folders(previous)
