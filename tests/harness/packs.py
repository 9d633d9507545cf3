"""Build node packs and Python wheels on disk, and publish packs to a test registry: the one pack factory that the
registry, registry-server, environment and CLI tests and the benchmarks (`bench/install.py`, `bench/registry.py`)
all use.

Two pack layouts, as real packs come:
- :func:`make_pack`: a ComfyUI-format pack (root ``__init__.py`` exporting ``NODE_CLASS_MAPPINGS``, a
  ``pyproject.toml`` with ``[tool.comfy]``, optionally a ``requirements.txt`` and a git repository);
- :func:`project_pack`: a Python project with its own package and a ``hearth`` entry point, laid out as the
  first-party plugins are.
:class:`Packs` publishes either to a running registry (a :class:`tests.registry_server.helpers.Hub`) and waits for
verification; :func:`python_wheel` makes the small wheels that stand in for PyPI.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import textwrap
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.registry_server.helpers import Hub

# A ComfyUI V1 node that upper-cases its text.
NODE_SOURCE = '''
class {cls}:
    CATEGORY = "{category}"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"text": ("STRING", {{"default": ""}})}}}}

    def run(self, text):
        return (text.upper(),)


NODE_CLASS_MAPPINGS = {{"{cls}": {cls}}}
NODE_DISPLAY_NAME_MAPPINGS = {{"{cls}": "{cls}"}}
'''

# A Hearth plugin module with one output node that shows "<text> from <category>", registered through the hook.
PLUGIN_SOURCE = '''
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

# A plugin module that registers nothing: enough for an entry point to load.
EMPTY_PLUGIN_SOURCE = "from hearth.core.hookspecs import hookimpl  # noqa: F401\n"

BUILD_SYSTEM = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'


def class_name(name: str) -> str:
    """The node class a pack gets when the test does not name one: ``cool-nodes`` -> ``CoolNodesNode``."""
    return "".join(p.title() for p in name.replace(".", "-").replace("_", "-").split("-")) + "Node"


def pyproject(name: str, version: str = "1.0.0", publisher: str = "acme", *, description: str = "Test nodes",
              dependencies: list[str] | tuple[str, ...] | None = None, extra_project: str = "",
              extra_comfy: str = "", license: str = "MIT") -> str:
    """A pack's ``pyproject.toml``: ``[project]`` with urls, and ``[tool.comfy]`` naming the publisher."""
    deps = ", ".join(f'"{d}"' for d in (dependencies or []))
    return textwrap.dedent(f"""\
        [project]
        name = "{name}"
        version = "{version}"
        description = "{description}"
        license = {{ text = "{license}" }}
        dependencies = [{deps}]
        requires-python = ">=3.9"
        classifiers = ["Operating System :: OS Independent", "Environment :: GPU :: NVIDIA CUDA"]
        {extra_project}
        [project.urls]
        Repository = "https://example.com/{publisher}/{name}"

        [tool.comfy]
        PublisherId = "{publisher}"
        DisplayName = "{name.title()}"
        Icon = ""
        {extra_comfy}
        """)


def make_pack(root: Path, name: str, version: str = "1.0.0", publisher: str = "acme", *,
              node_class: str | None = None, requirements: tuple[str, ...] = (), git: bool = False,
              extra_files: dict[str, str] | None = None, **manifest) -> Path:
    """A ComfyUI-format pack folder ``root/<name>-<version>`` with one node class; ``requirements`` go to a
    requirements.txt; ``git=True`` makes it a repository with everything committed."""
    pack = root / f"{name}-{version}"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "pyproject.toml").write_text(pyproject(name, version, publisher, **manifest))
    (pack / "__init__.py").write_text(NODE_SOURCE.format(cls=node_class or class_name(name), category=name))
    if requirements:
        (pack / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    for rel, text in (extra_files or {}).items():
        (pack / rel).parent.mkdir(parents=True, exist_ok=True)
        (pack / rel).write_text(text)
    if git:
        env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
        subprocess.run(["git", "init", "-q", str(pack)], check=True, env=env)
        subprocess.run(["git", "-C", str(pack), "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", str(pack), "commit", "-qm", "init"], check=True, env=env)
    return pack


def project_pack(root: Path, name: str, version: str = "1.0.0", publisher: str = "acme", *,
                 node_class: str | None = None, dependencies: list[str] | tuple[str, ...] = (),
                 build_system: bool = False, folder: str | None = None, **manifest) -> Path:
    """A Python-project pack ``root/<name>-<version>``: package ``<name>`` (dashes as underscores) whose
    ``plugin`` module is the ``hearth`` entry point; with ``node_class`` it registers one output node
    (:data:`PLUGIN_SOURCE`), without it nothing. ``build_system`` adds setuptools' ``[build-system]`` and a README,
    for tests that build the project themselves."""
    module = name.replace("-", "_")
    pack = root / (folder or f"{name}-{version}")
    (pack / module).mkdir(parents=True)
    entry = f'[project.entry-points.hearth]\n{module} = "{module}.plugin"\n'
    text = pyproject(name, version, publisher, dependencies=dependencies, extra_project=entry, **manifest)
    (pack / "pyproject.toml").write_text((BUILD_SYSTEM if build_system else "") + text)
    if build_system:
        (pack / "README.md").write_text(f"# {name}\n")
    (pack / module / "__init__.py").write_text(f"VERSION = {version!r}\n")
    source = PLUGIN_SOURCE.format(cls=node_class, category=name) if node_class else EMPTY_PLUGIN_SOURCE
    (pack / module / "plugin.py").write_text(source)
    return pack


def installed_distribution(site_packages: Path, dist: str, module: str, node_class: str, *, version: str = "1.0.0",
                           entry_point: str | None = None, source: str | None = None) -> None:
    """A one-module pack placed in site-packages as an installer leaves it: package, dist-info, entry point."""
    package = site_packages / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source or PLUGIN_SOURCE.format(cls=node_class, category=dist))
    info = site_packages / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[hearth]\n{entry_point or dist} = {module}\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


def custom_node(folder: Path, name: str, node_class: str) -> Path:
    """A ComfyUI custom-node folder ``folder/<name>`` with one node returning the INT 7 (as under custom_nodes/)."""
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
    return folder / name


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def python_wheel(folder: Path, name: str, version: str = "1.0.0", requires: tuple[str, ...] = (), *,
                 script: bool = True) -> Path:
    """A tiny pure-Python wheel made with the standard library (no build backend, no network): one module that
    says its name and version and, with ``script``, a ``<name>-version`` command printing the version."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{module}/__init__.py": f"NAME = {name!r}\nVERSION = {version!r}\n\n\ndef main():\n    print(VERSION)\n",
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hearth-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if script:
        files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{name}-version = {module}:main\n"
    data = {n: t.encode() for n, t in files.items()}
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in data.items()) + f"{info}/RECORD,,\n"
    data[f"{info}/RECORD"] = record.encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in data.items():
            zf.writestr(zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0)), d)
    return path


class Packs:
    """Builds packs under ``work`` and publishes them to a test registry under one new publisher."""

    def __init__(self, hub: Hub, work: Path):
        self.hub = hub
        self.work = work
        self.publisher, self.token = hub.new_publisher()
        self.read_token = hub.token(self.publisher, "read")

    def publish(self, folder: Path) -> dict:
        """Upload a pack folder and wait for verification; returns the version's details."""
        from hearth.registry.manifest import load_manifest

        self.hub.publish_dir(folder, self.token, wait=False)
        m = load_manifest(folder)
        # A private registry answers reads only with a token.
        return self.hub.wait(m.name, m.version, headers={"Authorization": f"Bearer {self.read_token}"})

    def hearth(self, name: str, version: str = "1.0.0", deps: tuple[str, ...] = ()) -> dict:
        """A Hearth-format pack (its own package, a ``hearth`` entry point), published."""
        return self.publish(project_pack(self.work, name, version, self.publisher, dependencies=deps,
                                         build_system=True, description=f"test pack {name}"))

    def comfyui(self, name: str, version: str = "1.0.0", requirements: tuple[str, ...] = (),
                node_class: str = "") -> dict:
        """A ComfyUI-format pack (root ``__init__.py`` with NODE_CLASS_MAPPINGS, a requirements.txt), published."""
        return self.publish(make_pack(self.work, name, version, self.publisher, node_class=node_class or None,
                                      requirements=requirements, description=f"test pack {name}"))
