"""Fixtures: a real registry on loopback with packs the tests build (through tests/harness/packs.py), a local wheel
folder standing in for PyPI, and a private HEARTH_HOME, user config and uv cache for every test."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hearth.cli.main import cli
from tests.harness.packs import Packs, python_wheel
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub, unique
from tests.registry_server.servers import RegistryProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    server = RegistryProcess(settings_for(Path(tempfile.mkdtemp(prefix="hearth-envs-")))).start()
    h = Hub(server.url, server.settings)
    yield h
    h.close()
    server.stop()


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in for PyPI: a folder of small wheels (find-links)."""
    folder = tmp_path_factory.mktemp("wheels")
    python_wheel(folder, "tinydep", "1.0")
    python_wheel(folder, "tinydep", "1.5")
    python_wheel(folder, "tinydep", "2.0")
    python_wheel(folder, "otherdep", "0.3", ("tinydep>=1",))
    return folder


@pytest.fixture(scope="session")
def packs(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Packs:
    return Packs(hub, tmp_path_factory.mktemp("packs"))


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wheels: Path,
         uv_cache: Path) -> Path:
    """A private HEARTH_HOME and user config (naming the test registry when the test publishes packs); no PyPI,
    the test wheels instead."""
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "hearth"))
    config = tmp_path / "config.toml"
    if "packs" in request.fixturenames:  # tests of environments alone need no registry process
        config.write_text(f'[[registries]]\nurl = "{request.getfixturevalue("hub").url}"\n')
    monkeypatch.setenv("COMFY_CONFIG", str(config))
    for name in ("COMFY_REGISTRY_URL", "COMFY_ENV", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COMFY_PYPI_URL", "none")
    monkeypatch.setenv("COMFY_FIND_LINKS", str(wheels))
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    return tmp_path / "hearth"


@pytest.fixture
def comfy(home: Path):  # noqa: ANN201
    """Run a `comfy` command in-process; returns click's Result (exit_code, output)."""

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args])

    return run


def comfy_process(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys; from hearth.cli.main import main; sys.exit(main(sys.argv[1:]))", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


__all__ = ["comfy_process", "unique"]
