"""Fixtures: a real registry on loopback with packs the tests build, a local wheel folder standing in for PyPI,
and a private HEARTH_HOME, user config and uv cache for every test."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hearth.cli.main import cli
from hearth.registry.manifest import load_manifest
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub, unique
from tests.registry_server.servers import RegistryProcess

ROOT = Path(__file__).resolve().parents[2]


def python_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A tiny pure-python wheel whose module says its version, with a `<name>-version` command."""
    dist = name.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{dist}/__init__.py", f"VERSION = {version!r}\n\n\ndef main():\n    print(VERSION)\n")
        zf.writestr(f"{info}/entry_points.txt", f"[console_scripts]\n{name}-version = {dist}:main\n")
        zf.writestr(f"{info}/METADATA", meta)
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


class Packs:
    """Publishes packs built on the fly to the test registry, under one publisher."""

    def __init__(self, hub: Hub, work: Path):
        self.hub = hub
        self.work = work
        self.publisher, self.token = hub.new_publisher()
        self.read_token = hub.token(self.publisher, "read")

    def _publish(self, folder: Path) -> dict:
        self.hub.publish_dir(folder, self.token, wait=False)
        m = load_manifest(folder)
        # A private registry answers reads only with a token.
        return self.hub.wait(m.name, m.version, headers={"Authorization": f"Bearer {self.read_token}"})

    def _pyproject(self, name: str, version: str, deps: list[str], extra: str = "") -> str:
        listed = ", ".join(f'"{d}"' for d in deps)
        return textwrap.dedent(f"""\
            [project]
            name = "{name}"
            version = "{version}"
            description = "test pack {name}"
            license = {{ text = "MIT" }}
            requires-python = ">=3.9"
            dependencies = [{listed}]
            {extra}
            [tool.comfy]
            PublisherId = "{self.publisher}"
            DisplayName = "{name}"
            Icon = ""
            """)

    def hearth(self, name: str, version: str = "1.0.0", deps: tuple[str, ...] = ()) -> dict:
        """A Hearth-format pack: a Python project with its own package and a `hearth` entry point."""
        pkg = name.replace("-", "_")
        folder = self.work / f"{name}-{version}"
        (folder / pkg).mkdir(parents=True)
        extra = f'[project.entry-points.hearth]\n{pkg} = "{pkg}.plugin"\n'
        (folder / "pyproject.toml").write_text(
            "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n"
            + self._pyproject(name, version, list(deps), extra))
        (folder / "README.md").write_text(f"# {name}\n")
        (folder / pkg / "__init__.py").write_text(f"VERSION = {version!r}\n")
        (folder / pkg / "plugin.py").write_text("from hearth.core.hookspecs import hookimpl  # noqa: F401\n")
        return self._publish(folder)

    def comfyui(self, name: str, version: str = "1.0.0", requirements: tuple[str, ...] = (),
                node_class: str = "") -> dict:
        """A ComfyUI-format pack: root __init__.py with NODE_CLASS_MAPPINGS and a requirements.txt."""
        folder = self.work / f"{name}-{version}"
        folder.mkdir(parents=True)
        (folder / "pyproject.toml").write_text(self._pyproject(name, version, []))
        cls = node_class or name.replace("-", "_").title().replace("_", "") + "Node"
        (folder / "__init__.py").write_text(textwrap.dedent(f"""\
            class {cls}:
                CATEGORY = "tests"
                RETURN_TYPES = ("STRING",)
                FUNCTION = "run"

                @classmethod
                def INPUT_TYPES(cls):
                    return {{"required": {{"text": ("STRING", {{"default": ""}})}}}}

                def run(self, text):
                    return (text,)


            NODE_CLASS_MAPPINGS = {{"{cls}": {cls}}}
            """))
        (folder / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
        return self._publish(folder)


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


__all__ = ["Packs", "comfy_process", "python_wheel", "unique"]
