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
    instance = HearthServer(root / "data", "--models-dir", str(models), "--max-upload-mb", "2")
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def client(server: HearthServer) -> Iterator[httpx.Client]:
    with server.http() as http:
        yield http
