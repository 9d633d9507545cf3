"""An environment's base: Hearth itself, torch and what Hearth's runtime needs, pinned at their installed versions.

The base is never installed into an environment (each generation reaches Hearth's own site-packages through a
.pth file); resolution holds it fixed, so no pack can replace or duplicate any of it.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import TYPE_CHECKING

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

if TYPE_CHECKING:
    from registry.envs import Environment


def base_packages(root: str = "comfy-hearth", always: tuple[str, ...] = ("torch",)) -> dict[str, str]:
    """Hearth and everything its runtime needs, as installed now: canonical name -> exact version.

    Walks the installed requirement graph from `root` (markers evaluated, extras not followed unless asked),
    so a pack can neither replace nor duplicate anything Hearth itself imports.
    """
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
                    found.setdefault(canonicalize_name(name), version)
    return found
