"""Factories for tiny node packs on disk, shared by the registry and registry-server tests."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

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


def pyproject(name: str, version: str = "1.0.0", publisher: str = "acme", *, description: str = "Test nodes",
              dependencies: list[str] | None = None, extra_project: str = "", extra_comfy: str = "") -> str:
    deps = ", ".join(f'"{d}"' for d in (dependencies or []))
    return textwrap.dedent(f"""\
        [project]
        name = "{name}"
        version = "{version}"
        description = "{description}"
        license = {{ text = "MIT" }}
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
              node_class: str | None = None, git: bool = False, extra_files: dict[str, str] | None = None,
              **manifest) -> Path:
    """A ComfyUI-format pack folder with one node class; optionally a git repository with everything committed."""
    pack = root / f"{name}-{version}"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "pyproject.toml").write_text(pyproject(name, version, publisher, **manifest))
    cls = node_class or "".join(p.title() for p in name.replace(".", "-").replace("_", "-").split("-")) + "Node"
    (pack / "__init__.py").write_text(NODE_SOURCE.format(cls=cls, category=name))
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
