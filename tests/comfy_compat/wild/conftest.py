"""Fixtures of the wild-pack tests: a Runtime that loads the test module's ``PACKS`` folder (packs written the way
real ones are) over the tiny SD models, its plugin manager and an executor. A module that needs other models
overrides ``models``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from tests.comfy_compat.tiny_sd import executor_for, make_models


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def packs_runtime(request: pytest.FixtureRequest, models: ModelFolders,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))  # the machine's test budget is two cores
    work = tmp_path_factory.mktemp("work")
    runtime = Runtime.build(model_folders=models, custom_nodes=[request.module.PACKS], environ={},
                            output=work / "output", input=work / "input", temp=work / "temp")
    try:
        with runtime.activate():
            runtime.plugins  # noqa: B018 - load the packs now, inside the runtime
            yield runtime
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pm(packs_runtime: Runtime) -> PluginManager:
    return packs_runtime.plugins


@pytest.fixture(scope="module")
def executor(pm: PluginManager, tmp_path_factory: pytest.TempPathFactory) -> Executor:
    return executor_for(pm, tmp_path_factory.mktemp("run"))
