"""Fixtures for the server tests: the shared ``comfy serve`` process and an HTTP client for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hearth_server import HearthServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """The shared server: test pack loaded, 2 MB request limit, a models folder with one file."""
    root = tmp_path_factory.mktemp("hearth")
    models = root / "models"
    (models / "checkpoints" / "sd").mkdir(parents=True)
    (models / "checkpoints" / "sd" / "tiny.safetensors").write_bytes(b"\0")
    (models / "checkpoints" / "notes.txt").write_text("not a model")
    (models / "embeddings").mkdir()
    (models / "embeddings" / "style.pt").write_bytes(b"\0")
    # A second folder of LoRAs from an extra_model_paths.yaml, as a ComfyUI install shares its models.
    (root / "shared" / "my-loras").mkdir(parents=True)
    (root / "shared" / "my-loras" / "extra-style.safetensors").write_bytes(b"\0")
    (root / "extra_model_paths.yaml").write_text("shared:\n  base_path: shared\n  loras: my-loras\n")
    instance = HearthServer(root / "data", "--models-dir", str(models), "--max-upload-mb", "2",
                            "--extra-model-paths-config", str(root / "extra_model_paths.yaml"))
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def client(server: HearthServer) -> Iterator[httpx.Client]:
    with server.http() as http:
        yield http
