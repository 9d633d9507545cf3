"""Fixtures: a private Hearth home and config per test, environments with hand-made packs, one real registry."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hearth.cli.main import cli
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub
from tests.registry_server.servers import ROOT, RegistryProcess

NODE_PACK = '''
from hearth.core.hookspecs import hookimpl


class {cls}:
    CATEGORY = "{category}"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"text": ("STRING", {{"default": "{category}"}})}}}}

    def run(self, text):
        return {{"ui": {{"text": [text + " from {category}"]}}, "result": (text,)}}


@hookimpl
def register_nodes():
    return {{"{cls}": {cls}}}
'''


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


def add_distribution(site_packages: Path, dist: str, module: str, node_class: str, *, version: str = "1.0.0",
                     entry_point: str | None = None, source: str | None = None) -> None:
    """Install a one-module pack into site-packages as an installer would: package, dist-info, entry point."""
    package = site_packages / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source or NODE_PACK.format(cls=node_class, category=dist))
    info = site_packages / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[hearth]\n{entry_point or dist} = {module}\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


def comfyui_pack(folder: Path, name: str, node_class: str) -> None:
    """A ComfyUI-format pack (NODE_CLASS_MAPPINGS) in a custom_nodes folder."""
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text(textwrap.dedent(f'''
        class {node_class}:
            CATEGORY = "{name}"
            RETURN_TYPES = ("INT",)
            FUNCTION = "run"

            @classmethod
            def INPUT_TYPES(cls):
                return {{"required": {{}}}}

            def run(self):
                return (7,)


        NODE_CLASS_MAPPINGS = {{"{node_class}": {node_class}}}
        '''))


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


def project_pack(root: Path, name: str, node_class: str, publisher: str, version: str = "1.0.0") -> Path:
    """A Python-project pack (its own package and a hearth entry point), laid out as the first-party packs are."""
    module = name.replace("-", "_")
    pack = root / f"{name}-{version}"
    (pack / module).mkdir(parents=True)
    (pack / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "{name}"
        version = "{version}"
        description = "Test pack {name}"
        license = {{ text = "Apache-2.0" }}
        requires-python = ">=3.9"
        dependencies = []

        [project.urls]
        Repository = "https://example.com/{publisher}/{name}"

        [project.entry-points.hearth]
        {module} = "{module}.plugin"

        [tool.comfy]
        PublisherId = "{publisher}"
        DisplayName = "{name}"
        Icon = ""
        """))
    (pack / module / "__init__.py").write_text("")
    (pack / module / "plugin.py").write_text(NODE_PACK.format(cls=node_class, category=name))
    return pack
