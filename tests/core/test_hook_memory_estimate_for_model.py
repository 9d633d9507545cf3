"""The model manager asks plugins how much working memory a model needs before it loads it."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from hearth.core.hookspecs import hookimpl
from hearth.core.models import ModelManager, PatchedModel
from hearth.core.models.manager import ModelTooLargeError
from hearth.core.plugins import PluginManager


class Estimates:
    def __init__(self) -> None:
        self.asked: list[tuple[str, Any]] = []

    @hookimpl
    def memory_estimate_for_model(self, model: Any, input_shape: Any) -> int | None:
        self.asked.append((model.name, input_shape))
        if model.name == "hungry":
            return 10 * 2**20
        return None


def test_hook_memory_estimate_for_model() -> None:
    estimates = Estimates()
    plugins = PluginManager().load(environ={}, entry_points=False)
    plugins.register(estimates, "estimates")
    manager = ModelManager("cpu", budgets={"cpu": 4 * 2**20}, plugins=plugins)

    small = PatchedModel(torch.nn.Linear(8, 8), name="small", load_device="cpu", memory_estimate=1024)
    assert manager.memory_estimate(small, (1, 8)) == 1024  # the plugin answered None: the model's own estimate
    manager.load(small, input_shape=(1, 8))
    assert manager.is_loaded(small)

    hungry = PatchedModel(torch.nn.Linear(8, 8), name="hungry", load_device="cpu")
    assert manager.memory_estimate(hungry, (2, 8)) == 10 * 2**20
    with pytest.raises(ModelTooLargeError):
        manager.load(hungry, input_shape=(2, 8))  # 10 MiB of working memory cannot fit a 4 MiB budget
    assert ("hungry", (2, 8)) in estimates.asked

    without_plugins = ModelManager("cpu", budgets={"cpu": 4 * 2**20})
    without_plugins.load(hungry)  # no plugin: the model declared nothing, so it fits
    assert without_plugins.is_loaded(hungry)
