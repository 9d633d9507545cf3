"""An environment's base: Hearth itself, torch and what Hearth's runtime needs, pinned at their installed versions.

The base is never installed into an environment (each generation reaches Hearth's own site-packages through a
.pth file); resolution holds it fixed, so no pack can replace or duplicate any of it: a constraints file pins each
base package to an empty stand-in wheel of its exact version, so uv resolves against it and never looks it up.
The stand-ins are made once per environment and base, not on every resolve.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from hearth.registry.pids import pid_alive

if TYPE_CHECKING:
    from hearth.registry.envs import Environment

STAND_INS = ".base-"  # <env root>/.base-<digest>/: the stand-in wheels and constraints.txt for one base
CONSTRAINTS = "constraints.txt"


def base_packages(root: str = "comfy-hearth", always: tuple[str, ...] = ("torch",)) -> dict[str, str]:
    """Hearth and everything its runtime needs, as installed now: canonical name -> exact version.

    Walks the installed requirement graph from `root` (markers evaluated, extras not followed unless asked),
    so a pack can neither replace nor duplicate anything Hearth itself imports.
    """
    # Imported here: only `comfy env create` walks the graph, and importlib.metadata costs every command 15 ms.
    from importlib import metadata

    from packaging.markers import default_environment
    from packaging.requirements import InvalidRequirement, Requirement
    env = default_environment()
    found: dict[str, str] = {}
    queue: list[tuple[str, frozenset[str]]] = [(root, frozenset())] + [(n, frozenset()) for n in always]
    while queue:
        name, extras = queue.pop()
        key = canonicalize_name(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        first = key not in found
        found[key] = dist.version
        for line in dist.requires or ():
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is not None:
                wanted = [e for e in (extras or {""}) if req.marker.evaluate({**env, "extra": e})]
                if not wanted:
                    continue
            if first or req.extras:
                if canonicalize_name(req.name) not in found or req.extras:
                    queue.append((req.name, frozenset(req.extras)))
    return dict(sorted(found.items()))


def base_drift(env: Environment) -> dict[str, tuple[str, str]]:
    """Base packages whose version in Hearth's runtime now differs from the one recorded: name -> (recorded, now)."""
    listed = _dist_info_versions()
    drift = {}
    for name, recorded in env.base.items():
        now = listed.get(name)
        if now is None:  # not found by folder name (an egg-info, an odd spelling): ask importlib, slower
            from importlib import metadata

            try:
                now = metadata.version(name)
            except metadata.PackageNotFoundError:
                now = "missing"
        if now != recorded:
            drift[name] = (recorded, now)
    return drift


def _dist_info_versions() -> dict[str, str]:
    """Installed distributions by their dist-info folder names (name-version.dist-info): no METADATA parsing."""
    found: dict[str, str] = {}
    for folder in sys.path:
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.name.endswith(".dist-info") and "-" in entry.name:
                    name, _, version = entry.name[:-len(".dist-info")].partition("-")
                    # canonicalize_name without its regex, for hundreds of folders: the same for the names
                    # installers write (a rare odd spelling misses here and is asked of importlib instead).
                    found.setdefault(name.replace("_", "-").replace(".", "-").lower(), version)
    return found


# -- stand-ins: what resolution pins the base to -------------------------------------------------------------------

def base_digest(base: dict[str, str], folder: Path) -> str:
    """Names the stand-ins for `base` at `folder`: their constraints name file URLs there, so the place counts."""
    key = json.dumps({"base": sorted(base.items()), "at": str(folder)}, separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _stub_name(name: str, version: str) -> str:
    return f"{canonicalize_name(name).replace('-', '_')}-{version}-py3-none-any.whl"


def _write_stub(path: Path, name: str, version: str) -> None:
    dist = canonicalize_name(name).replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in ((f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
                             (f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
                             (f"{info}/RECORD", "")):
            zf.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), text)


def base_constraints(root: Path, base: dict[str, str]) -> Path:
    """The constraints file pinning each base package to a local stand-in wheel of its exact version.

    Made once per environment and base, in ``<root>/.base-<digest>/``, and reused by every resolve: rebuilt when
    the base recorded for the environment (or the environment's place) changes, or when a file of it is missing.
    Built under a temporary name and renamed into place, so a killed build leaves nothing that passes for it.
    """
    digest = base_digest(base, root)
    folder = root / f"{STAND_INS}{digest}"
    path = folder / CONSTRAINTS
    wanted = {_stub_name(n, v) for n, v in base.items()} | {CONSTRAINTS}
    if _complete(folder, wanted):
        return path
    root.mkdir(parents=True, exist_ok=True)
    _clear_stand_ins(root, keep=folder.name)
    staging = root / f".stand-ins-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        lines = [f"# stand-ins for the base of {root} ({digest}): made by Hearth, do not edit"]
        for name, version in base.items():
            stub = _stub_name(name, version)
            _write_stub(staging / stub, name, version)
            lines.append(f"{name} @ {(folder / stub).as_uri()}")  # the name it will have once renamed
        (staging / CONSTRAINTS).write_text("\n".join(lines) + "\n", encoding="utf-8")
        if _complete(folder, wanted):  # a concurrent resolve made them meanwhile, and may be using them
            return path
        if folder.exists():  # incomplete (a file was removed): replaced whole
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.rename(staging, folder)
        except OSError:  # a concurrent resolve put a complete one there first
            if not _complete(folder, wanted):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _complete(folder: Path, wanted: set[str]) -> bool:
    try:
        return wanted <= set(os.listdir(folder))
    except OSError:
        return False


def _clear_stand_ins(root: Path, keep: str) -> None:
    """Remove stand-ins of other bases and what killed builds left (hidden folders of processes not running)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(root / "base")  # the layout before stand-ins were keyed by their base
    for entry in root.glob(".*"):
        if entry.name.startswith(STAND_INS) and entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(".stand-ins-"):
            pid = entry.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)


    return True
