"""Fixtures: a private Hearth home and config per test, environments with hand-made packs (built by
tests/harness/packs.py), one real registry."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hearth.cli.main import cli
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub
from tests.registry_server.servers import ROOT, RegistryProcess


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HEARTH_HOME and the registry config in this test's folder: no test reads or writes the real home."""
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "hearth-home"))
    monkeypatch.setenv("COMFY_CONFIG", str(tmp_path / "config" / "config.toml"))
    for name in ("COMFY_REGISTRY_URL", "COMFY_ENV", "HEARTH_PLUGINS", "HEARTH_DISABLE_PLUGINS",
                 "HEARTH_CUSTOM_NODES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "hearth-home"


@pytest.fixture
def make_env(home: Path) -> Callable[[str], object]:
    """A real environment (uv venv, generation 0) made through registry.envs."""
    from hearth.registry.envs import create_environment

    return create_environment


# `python -m hearth.cli.main` would import hearth.cli.main twice (as __main__ and by the commands): call main() instead.
COMFY = [sys.executable, "-c", "import sys; from hearth.cli.main import main; sys.exit(main(sys.argv[1:]))"]


def comfy_process(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
                  ) -> subprocess.CompletedProcess:
    """Run `comfy` in its own process: --env changes the import path, which must not leak into other tests."""
    return subprocess.run([*COMFY, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


@pytest.fixture
def comfy(home: Path) -> Callable[..., Result]:
    """Run a `comfy` command in-process (for commands that do not load an environment's plugins)."""

    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args])

    return run


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    server = RegistryProcess(settings_for(Path(tempfile.mkdtemp(prefix="hearth-envs-cli-")))).start()
    h = Hub(server.url, server.settings)
    yield h
    h.close()
    server.stop()


@pytest.fixture(scope="session")
def private_hub() -> Iterator[Hub]:
    """A second registry: the private one, listed first in the tests that need two."""
    server = RegistryProcess(settings_for(Path(tempfile.mkdtemp(prefix="hearth-envs-cli-private-")))).start()
    h = Hub(server.url, server.settings)
    yield h
    h.close()
    server.stop()
