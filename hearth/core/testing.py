"""Pytest fixtures for plugin authors (registered as the ``hearth`` pytest11 plugin).

``hearth_runtime`` is a :class:`~hearth.core.runtime.Runtime` on temporary folders of its own (models, output,
input, temp: apart from ``tmp_path``, which stays the test's), with every installed plugin, active for the whole test: nodes, ``model_folders()``,
``context.folders()`` and ``default_manager()`` all answer from it. ``hearth_plugins`` is its plugin manager;
``register_plugin`` registers a test plugin for one test and always unregisters it; ``run_prompt`` validates and
executes an API-format prompt in it (or in the Runtime the test activated)::

    def test_my_node(hearth_runtime, run_prompt):
        write_my_tiny_model(hearth_runtime.model_folders.folders("checkpoints")[0] / "tiny.safetensors")
        assert run_prompt({...}).ok

``make_runtime(**options)`` builds more Runtimes on folders of their own (two model folders in one test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.core.context import Folders
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime, current_runtime


def runtime_on(root: Path, **options: Any) -> Runtime:
    """A Runtime whose models, output, input and temp folders are made under ``root``; ``HEARTH_PLUGINS`` and
    ``HEARTH_DISABLE_PLUGINS`` of the test process are ignored unless ``environ`` says otherwise."""
    options.setdefault("environ", {})
    for name in ("models", "output", "input", "temp"):
        key = "models_dir" if name == "models" else name
        if key not in options:
            (root / name).mkdir(parents=True, exist_ok=True)
            options[key] = root / name
    return Runtime.build(**options)


@pytest.fixture
def make_runtime(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Runtime]:
    """``make_runtime(name="runtime", **options) -> Runtime`` on fresh temporary folders of its own (not activated)."""

    def make(name: str = "runtime", **options: Any) -> Runtime:
        return runtime_on(tmp_path_factory.mktemp(name), **options)

    return make


@pytest.fixture
def hearth_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A Runtime on fresh temporary folders (``models``, ``output``, ``input``, ``temp``), active for the test.

    Plugins load the first time something asks for them, so a test that never runs a node pays nothing for them.
    """
    runtime = runtime_on(tmp_path_factory.mktemp("hearth"))
    with runtime.activate():
        yield runtime


@pytest.fixture
def hearth_plugins(hearth_runtime: Runtime) -> PluginManager:
    """Every tier loaded from this environment (entry points included), without custom_nodes folders."""
    return hearth_runtime.plugins


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
def hearth_folders(hearth_runtime: Runtime) -> Folders:
    """The input, output and temp folders of ``hearth_runtime`` (they exist)."""
    return hearth_runtime.folders


@pytest.fixture
def run_prompt(hearth_runtime: Runtime) -> Iterator[Callable[..., Any]]:
    """``run_prompt(prompt, cache="classic", **run_kwargs) -> ExecutionResult`` in the current Runtime
    (``hearth_runtime``, or one the test activated): one executor per Runtime and cache for the whole test."""
    from hearth.core.executor import Executor

    executors: dict[tuple[int, str], Executor] = {}

    def run(prompt: dict[str, Any], cache: str = "classic", **kwargs: Any) -> Any:
        runtime = current_runtime() or hearth_runtime
        # One executor per cache strategy for the whole test, so caching across runs can be tested too.
        executor = executors.get((id(runtime), cache))
        if executor is None:
            executor = executors[(id(runtime), cache)] = Executor(
                runtime.nodes, cache=cache, folders=runtime.folders, plugins=runtime.plugins, runtime=runtime)
        return executor.run(prompt, **kwargs)

    yield run
