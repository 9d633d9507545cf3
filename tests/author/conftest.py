"""Fixtures: one real registry (SQLite, loopback) for the author tests, and a private user config per test."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hearth.cli.main import cli
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub
from tests.registry_server.servers import RegistryProcess


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    server = RegistryProcess(settings_for(Path(tempfile.mkdtemp(prefix="hearth-author-")))).start()
    h = Hub(server.url, server.settings)
    yield h
    h.close()
    server.stop()


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own config file, and no registry from the environment running the tests."""
    path = tmp_path / "home" / "config.toml"
    monkeypatch.setenv("COMFY_CONFIG", str(path))
    monkeypatch.delenv("COMFY_REGISTRY_URL", raising=False)
    return path


@pytest.fixture
def comfy(config_file: Path):  # noqa: ANN201
    """Run a `comfy` command in-process; returns click's Result (exit_code, output)."""

    def run(*args: str, input: str | None = None) -> Result:  # noqa: A002 - click's name
        return CliRunner().invoke(cli, [str(a) for a in args], input=input)

    return run
