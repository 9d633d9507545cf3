"""The modules that run the sample packs share one Runtime per module: the packs load once, inside it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from hearth.core.model_folders import ModelFolders
from hearth.core.runtime import Runtime
from hearth.core.testing import runtime_on
from tests.comfy_compat.tiny_sd import PACKS


@pytest.fixture(scope="module")
def packs_runtime(models: ModelFolders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A Runtime on the module's ``models`` folders with every sample pack, active while the module runs.

    Its plugins load here, inside it: the packs read ``folder_paths`` and ``comfy.samplers`` while they import.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))  # the machine's test budget is two cores
    work = tmp_path_factory.mktemp("work")
    runtime = Runtime.build(model_folders=models, custom_nodes=[PACKS], environ={}, output=work / "output",
                            input=work / "input", temp=work / "temp")
    try:
        with runtime.activate():
            runtime.plugins  # noqa: B018 - load now, so a pack's import error shows in the first test that asks
            yield runtime
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def hearth_runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A test that uses the packs runs in the module's ``packs_runtime``; any other in a fresh one, as elsewhere."""
    if "packs_runtime" in request.fixturenames:
        runtime = request.getfixturevalue("packs_runtime")
    else:
        runtime = runtime_on(tmp_path_factory.mktemp("hearth"))
    with runtime.activate():
        yield runtime
