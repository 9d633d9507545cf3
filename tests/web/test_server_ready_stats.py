"""/system_stats before and after the plugins load: while they load it answers at once with the machine as one CPU
device (making the model manager would import torch first); once a model is loaded it shows the dtype policy the
manager chose for it (a float16 checkpoint held in float32 on a CPU: issue 23 item 2)."""

from __future__ import annotations

import threading
from importlib import metadata
from pathlib import Path

import pytest
from hearth_sd.checkpoint import load_checkpoint
from hearth_sd.tiny import tiny_state_dict
from starlette.testclient import TestClient

from hearth.core.models import write_safetensors
from hearth.core.models.manager import ModelManager
from hearth.core.models.patches import PatchedModel
from hearth.core.runtime import Runtime
from hearth.web.app import create_app
from hearth.web.config import ServerConfig
from hearth.web.runtime import ServerState


def test_system_stats_answers_while_the_plugins_load_and_shows_the_dtype_policy_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tensors, info = tiny_state_dict("sd1")
    checkpoint = write_safetensors(tensors, tmp_path / "half.safetensors", info)  # float16, as tiny files are
    manager = ModelManager("cpu")
    runtime = Runtime.build(models_dir=tmp_path / "models", output=tmp_path / "out", input=tmp_path / "in",
                            entry_points=False, manager=manager)
    release = threading.Event()
    load = ServerState.load_plugins

    def held(self: ServerState) -> None:
        release.wait(30)
        load(self)

    monkeypatch.setattr(ServerState, "load_plugins", held)
    monkeypatch.setattr(Runtime, "has_manager", lambda self: False)  # as in `comfy serve`: none made yet
    config = ServerConfig(data=tmp_path / "data", allowed_hosts=["testserver"], serve_frontend=False)
    with TestClient(create_app(config, runtime)) as client:
        early = client.get("/api/system_stats").json()
        assert [d["type"] for d in early["devices"]] == ["cpu"] and early["hearth"] == {"dtype_policy": []}
        assert early["system"]["pytorch_version"] == metadata.version("torch")
        release.set()
        client.app.state.hearth.loaded.result(timeout=30)
        unet = PatchedModel(load_checkpoint(checkpoint, load_device="cpu").model.unet, name="unet",
                            load_device="cpu")
        manager.load(unet, memory_required=0)
        (policy,) = client.get("/api/system_stats").json()["hearth"]["dtype_policy"]
        assert (policy["model"], policy["stored_dtype"], policy["held_dtype"]) == ("unet", "fp16", "fp32")
