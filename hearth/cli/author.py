"""Commands for pack authors: ``comfy login`` and ``comfy node init / validate / pack / publish``."""

from __future__ import annotations

import json
import re
import tempfile
import tomllib
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from hearth.cli.main import UserError
from hearth.registry.archive import Archive, ArchiveError, build_archive, list_pack_files
from hearth.registry.client import NotFound, RegistryClient, RegistryError, Unauthorized
from hearth.registry.config import ConfigError, load_config, primary_index, save_config
from hearth.registry.manifest import (
    Manifest,
    ManifestError,
    check_archive_files,
    check_version_text,
    load_manifest,
    parse_manifest,
)

_VERDICT_STYLE = {"pass": "bold green", "flag": "bold yellow", "reject": "bold red"}


def _registry_option(fn):  # noqa: ANN001, ANN201
    return click.option("--registry", "registry_url", metavar="URL",
                        help="Registry to use (default: $COMFY_REGISTRY_URL, else the first in the config file).")(fn)


def _target(registry_url: str | None, token: str | None) -> tuple[str, str | None]:
    """(registry URL, token): --token wins over the stored token for that registry."""
    try:
        config = load_config()
        index = primary_index(config, registry_url)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    return index.url, token or index.token


@click.command("login")
@_registry_option
@click.option("--token", help="Access token (prompted for, hidden, when not given).")
def login(registry_url: str | None, token: str | None) -> None:
    """Store a registry token in the user config (readable only by you), after checking it with the registry."""
    url, _ = _target(registry_url, None)
    token = (token or click.prompt(f"Token for {url}", hide_input=True, default="", show_default=False)).strip()
    if not token:
        raise UserError("no token given: create one on the registry (comfy registry admin create-token) and pass it")
    who = None
    try:
        with RegistryClient(url, token) as client:
            who = client.whoami()
    except NotFound:
        pass  # a registry without /api/v1/whoami (ComfyUI's): the token is checked on first use instead
    except Unauthorized as exc:
        raise UserError(f"{url} refused the token ({exc.status}); nothing was saved: check it, or create a new one "
                        "with `comfy registry admin create-token`") from None
    except RegistryError as exc:
        raise UserError(str(exc)) from None
    config = load_config()
    config.set_token(url, token)
    save_config(config)
    if who:
        as_whom = who.get("publisher") or who.get("user") or "?"
        click.echo(f"logged in to {url} as {as_whom} (scope {who.get('scope')}); token saved to {config.path}")
    else:
        click.echo(f"token for {url} saved to {config.path} (this registry cannot check tokens; not verified)")


# -- init ----------------------------------------------------------------------------------------------------------

_PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
description = "{title} nodes for ComfyUI and Hearth."
license = {{ text = "MIT" }}
requires-python = ">=3.10"
dependencies = []
classifiers = ["Operating System :: OS Independent"]

[project.urls]
Repository = ""

[tool.comfy]
PublisherId = "{publisher}"
DisplayName = "{title}"
Icon = ""
includes = []

[tool.pytest.ini_options]
# The tests import the node package from the pack folder without installing it.
pythonpath = ["."]
"""

_ROOT_INIT = '''\
"""ComfyUI loads a pack by importing this folder: re-export the node mappings of the {package} package."""

if __package__:
    from .{package} import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:  # pytest imports this file as a top-level module when it collects the pack folder
    from {package} import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
'''

_PACKAGE_INIT = '''\
"""{title}: the nodes this pack provides."""

from .nodes import {cls}

NODE_CLASS_MAPPINGS = {{"{cls}": {cls}}}
NODE_DISPLAY_NAME_MAPPINGS = {{"{cls}": "{title}: Repeat Text"}}
'''

_NODES = '''\
"""An example node in ComfyUI's V1 style: INPUT_TYPES, RETURN_TYPES and FUNCTION on a plain class."""


class {cls}:
    CATEGORY = "{name}"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("text",)
    FUNCTION = "repeat"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802 - the name ComfyUI looks for
        return {{"required": {{
            "text": ("STRING", {{"default": "hello", "multiline": False}}),
            "times": ("INT", {{"default": 2, "min": 1, "max": 100}}),
        }}}}

    def repeat(self, text: str, times: int):
        return (" ".join([text] * times),)
'''

_TEST = '''\
"""Tests of the example node: run with `pytest` from the pack folder."""

from {package} import NODE_CLASS_MAPPINGS
from {package}.nodes import {cls}


def test_repeat_joins_copies():
    assert {cls}().repeat("ab", 3) == ("ab ab ab",)


def test_node_is_registered_with_its_inputs():
    assert NODE_CLASS_MAPPINGS["{cls}"] is {cls}
    assert set({cls}.INPUT_TYPES()["required"]) == {{"text", "times"}}
'''

_COMFYIGNORE = """\
# Files left out of the archive `comfy node pack` and `comfy node publish` build (gitignore syntax).
tests/
.github/
*.pyc
dist/
"""

_README = """\
# {title}

ComfyUI / Hearth node pack `{name}` by `{publisher}`.

    pytest                          # run the tests
    comfy node validate             # manifest checks and the sandbox scan
    comfy node publish              # after `comfy login --registry URL`
"""


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", help="Pack id (default: the folder's name).")
@click.option("--publisher", default="my-publisher", show_default=True, help="Your publisher id on the registry.")
def init(directory: Path, name: str | None, publisher: str) -> None:
    """Create a new node pack: pyproject.toml, an example node, a test, .comfyignore and a README."""
    name = name or directory.resolve().name
    words = _words(name)
    if not words:
        raise UserError(f"{name!r} cannot be a pack id: use letters, digits and '-', e.g. --name my-nodes")
    package = "_".join(w.lower() for w in words)
    if package[0].isdigit():
        package = "nodes_" + package
    title = " ".join(w.capitalize() for w in words)
    cls = "".join(w.capitalize() for w in words) + "Repeat"
    files = {
        "pyproject.toml": _PYPROJECT.format(name=name, title=title, publisher=publisher),
        "__init__.py": _ROOT_INIT.format(package=package),
        f"{package}/__init__.py": _PACKAGE_INIT.format(title=title, cls=cls),
        f"{package}/nodes.py": _NODES.format(cls=cls, name=name),
        "tests/test_nodes.py": _TEST.format(package=package, cls=cls),
        ".comfyignore": _COMFYIGNORE,
        "README.md": _README.format(title=title, name=name, publisher=publisher),
    }
    # Check the manifest before writing anything, so a bad --name or --publisher leaves no half-made pack.
    try:
        parse_manifest(tomllib.loads(files["pyproject.toml"]), directory / "pyproject.toml")
    except ManifestError as exc:
        option = "--publisher" if "Publisher" in exc.field else "--name"
        raise UserError(f"{option}: {exc.message}") from None
    existing = [rel for rel in files if (directory / rel).exists()]
    if existing:
        raise UserError(f"{directory / existing[0]} already exists; init never overwrites files "
                        "(choose an empty folder)")
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    click.echo(f"created pack {name} in {directory} (node {cls}); next: cd {directory} && pytest && "
               "comfy node validate")


# -- validate / pack / publish -------------------------------------------------------------------------------------

def _manifest(directory: Path) -> Manifest:
    try:
        manifest = load_manifest(directory)
        check_version_text(manifest.version)
        # The files the archive would hold, under the rules the registry applies again on upload (a folder that
        # cannot be archived at all is the scan's to report).
        try:
            files = list_pack_files(directory, manifest.includes, ["dist"])
        except ArchiveError:
            files = []
        check_archive_files(files, lambda n: (directory / n).read_bytes() if (directory / n).is_file() else None,
                            directory)
    except ManifestError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:
        raise UserError(f"{directory / 'pyproject.toml'}: project.version: {exc}") from None
    return manifest


def _scan(directory: Path):  # noqa: ANN202 - sandbox.Report, imported lazily
    from hearth.sandbox import verify

    return verify(directory, isolate_import=True)


@click.command("validate")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--json", "as_json", is_flag=True, help="Print manifest and scan report as JSON.")
def validate(directory: Path, as_json: bool) -> None:
    """Check a pack before publishing: the manifest, then the registry's sandbox scan.

    Exit code 0 when it passes, 1 when the scan flags something, 2 when it would be rejected.
    """
    manifest = _manifest(directory)
    report = _scan(directory)
    if as_json:
        click.echo(json.dumps({"manifest": manifest.to_dict(), "scan": report.to_dict()}, indent=2))
    else:
        console = Console(highlight=False)
        console.print(f"[{_VERDICT_STYLE[report.verdict]}]{report.verdict.upper()}[/] {escape(manifest.name)} "
                      f"{escape(manifest.version)} by {escape(manifest.publisher)}: manifest ok, "
                      f"{len(report.findings)} finding(s), {len(report.nodes)} node(s)")
        for f in report.findings:
            console.print(f"  {f.severity:8} {escape(f.rule)} {escape(f.location)}: {escape(f.message)}")
    code = {"pass": 0, "flag": 1, "reject": 2}[report.verdict]
    if code:
        raise SystemExit(code)  # as `comfy node scan`: main() runs click non-standalone, so ctx.exit would be lost


def _build(directory: Path, manifest: Manifest, out: Path | None) -> Archive:
    dest = out or directory / "dist" / f"{manifest.name}-{manifest.version}.zip"
    # The default output folder holds earlier archives: outside git nothing else keeps them out of the next one.
    exclude = [] if out else ["dist"]
    try:
        return build_archive(directory, dest, manifest.includes, exclude)
    except ArchiveError as exc:
        raise UserError(str(exc)) from None


@click.command("pack")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Archive to write (default: DIR/dist/NAME-VERSION.zip).")
def pack(directory: Path, out: Path | None) -> None:
    """Build the pack's zip: git-tracked files minus .comfyignore, plus [tool.comfy] includes."""
    archive = _build(directory, _manifest(directory), out)
    click.echo(f"{archive.path}\nsha256 {archive.sha256}\nsize {archive.size} bytes, {len(archive.files)} files")


@click.command("publish")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--token", help="Publish token (default: the one `comfy login` stored for the registry).")
@_registry_option
@click.option("--changelog", default="", help="What changed in this version.")
def publish(directory: Path, token: str | None, registry_url: str | None, changelog: str) -> None:
    """Validate, pack and upload the pack's version to the registry."""
    manifest = _manifest(directory)
    url, token = _target(registry_url, token)
    if not token:
        raise UserError(f"no token for {url}: run `comfy login --registry {url}` or pass --token")
    report = _scan(directory)
    if report.verdict == "reject":
        worst = report.findings[0] if report.findings else None
        detail = f": {worst.rule} {worst.location}: {worst.message}" if worst else ""
        raise UserError(f"{directory}: the scan rejects this pack{detail} (see `comfy node validate`)")
    if report.verdict == "flag":
        # The registry runs the same scan and holds a flagged version for review; publishing still makes sense.
        click.echo(f"warning: the scan flags {len(report.findings)} finding(s); the registry may hold this version "
                   "for review (see `comfy node validate`)", err=True)
    with tempfile.TemporaryDirectory(prefix="hearth-publish-") as tmp:
        archive = _build(directory, manifest, Path(tmp) / f"{manifest.name}-{manifest.version}.zip")
        try:
            with RegistryClient(url, token) as client:
                ticket = client.reserve_version(manifest, archive.sha256, changelog)
                with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                              TransferSpeedColumn(), transient=True) as bar:
                    task = bar.add_task(f"uploading {archive.path.name}", total=archive.size)
                    result = client.upload(ticket["signedUrl"], archive.path, archive.sha256,
                                           lambda n: bar.advance(task, n))
        except RegistryError as exc:
            raise UserError(f"publish {manifest.publisher}/{manifest.name} {manifest.version}: {exc}") from None
    status = result.get("status", "pending")
    click.echo(f"published {manifest.publisher}/{manifest.name} {manifest.version} to {url} "
               f"(sha256 {archive.sha256[:12]}..., {archive.size} bytes, status {status})")
    if result.get("review"):
        click.echo(f"{manifest.name} {manifest.version} is not installable yet: {result['review']}")
