"""The node catalogue's key: a cheap fingerprint of everything the node definitions depend on, and where it lives.

What goes in (see :func:`key_parts`):

* Hearth's version, the catalogue's format, the Python running it;
* every ``hearth`` / ``hearth.default`` entry point this Runtime would load -- its name, target, distribution and
  version -- read from ``importlib.metadata`` exactly as :meth:`PluginManager.load` reads them; with ``--env``, every
  distribution installed in the environment's folders, by name and version;
* for a distribution installed *editable* (``pip install -e``: Hearth itself and its first-party plugins in a
  developer's checkout), the size and modification time of every file of its packages (of Hearth's, all but the
  folders that cannot change a node's definition: :data:`HEARTH_NOT_NODES`): its version does not change when its
  code does;
* every file of the custom-node folders, by path, size and modification time (``st_mtime_ns``);
* the plugin-loading knobs: allow / disable lists and their environment variables, the trust policy, the folders.

Stat-based, not content hashes: reading every file of twenty custom-node packs (their JavaScript, their bundled
weights) costs more than the import the catalogue saves, while an editor, ``git pull``, an unzip or an install all
change a file's size or ``st_mtime_ns``. The one edit a stat can miss is a same-size rewrite within the
filesystem's timestamp granularity; as git does for its index ("racily clean" files), a catalogue is not trusted
when any keyed file is newer than two seconds before the catalogue was built (:data:`RACY_NS`), so such a file is
read again until its time stamp is safely in the past.

Model folders are *not* in the key: the lists of model files a node offers are re-read on every load and put into
the cached definitions (:mod:`hearth.core.catalogue_probe`), so a new checkpoint never rebuilds the catalogue.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hearth.core.runtime import RuntimeOptions

FORMAT = 2  # bump when the catalogue file's shape or the meaning of its entries changes
HEARTH_DISTRIBUTION = "comfy-hearth"
RACY_NS = 2_000_000_000  # a file this much older than the build or newer is "racy": its stat may hide an edit
ENV_CATALOGUE = "HEARTH_CATALOGUE"  # "off": never read or write a catalogue (every command loads every plugin)
ENV_CACHE = "HEARTH_CACHE_DIR"
PLUGIN_ENV = ("HEARTH_PLUGINS", "HEARTH_DISABLE_PLUGINS", "HEARTH_ALLOW_OVERRIDE")
ENTRY_POINT_GROUPS = ("hearth.default", "hearth")
# Hearth's own folders whose code cannot change what a node says (the CLI, the servers, the registry client): left
# out of the key, so editing them in a checkout does not rebuild the catalogue.
HEARTH_NOT_NODES = frozenset({"cli", "web", "registry", "registry_server"})
SKIPPED_FOLDERS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


@dataclass(frozen=True)
class Fingerprint:
    """A catalogue key and the newest modification time among the files it was made from."""

    key: str
    newest_ns: int
    identity: str  # the settings alone (folders, knobs, environment), not the versions: names the catalogue file


def catalogue_enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether catalogues are read and written (``HEARTH_CATALOGUE=off`` turns them off)."""
    env = os.environ if environ is None else environ
    return env.get(ENV_CATALOGUE, "").strip().lower() not in ("off", "0", "no", "false")


def cache_folder() -> Path:
    """``$HEARTH_CACHE_DIR``, else ``$HEARTH_HOME/cache``, else ``$XDG_DATA_HOME/hearth/cache``, else
    ``~/.local/share/hearth/cache``: beside the environments and the uv cache the registry keeps there."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    if os.environ.get("HEARTH_HOME"):
        return Path(os.environ["HEARTH_HOME"]).expanduser() / "cache"
    base = Path(os.environ["XDG_DATA_HOME"]) if os.environ.get("XDG_DATA_HOME") else Path.home() / ".local/share"
    return base / "hearth" / "cache"


def hearth_version() -> str:
    try:
        return importlib.metadata.version(HEARTH_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def fingerprint(options: RuntimeOptions) -> Fingerprint:
    """The key of the catalogue ``options`` would give (see the module's docstring for what it covers)."""
    identity, parts, newest = key_parts(options)
    text = json.dumps(parts, sort_keys=True, default=str)
    ident = json.dumps(identity, sort_keys=True, default=str)
    return Fingerprint(hashlib.sha256(text.encode()).hexdigest(), newest,
                       hashlib.sha256(ident.encode()).hexdigest()[:24])


def key_parts(options: RuntimeOptions) -> tuple[dict[str, Any], dict[str, Any], int]:
    """(the settings, everything the key hashes, the newest file time seen) for ``options``."""
    env = os.environ if options.environ is None else options.environ
    trust = options.trust
    identity = {
        # The interpreter itself: `comfy` (python3.11) and `python -m hearth.cli.main` (python) share a catalogue.
        "python": os.path.realpath(sys.executable), "prefix": sys.prefix,
        "custom_nodes": [str(Path(p).absolute()) for p in options.custom_nodes],
        "site_packages": None if options.site_packages is None else [str(Path(p).absolute())
                                                                      for p in options.site_packages],
        "allow": None if options.allow is None else sorted(options.allow),
        "disable": None if options.disable is None else sorted(options.disable),
        "entry_points": options.entry_points,
        "environ": {name: env.get(name) for name in PLUGIN_ENV},
        "trust": {"mode": trust.mode, "trusted": sorted(trust.trusted), "network": sorted(trust.network),
                  "publishers": sorted(trust.trusted_publishers), "packs": sorted(trust.publisher_packs)},
        "pack_hosts": options.pack_hosts is not None,
    }
    stamp = Stamp()
    parts: dict[str, Any] = {
        "format": FORMAT, "hearth": hearth_version(), "python_version": sys.version,
        "identity": identity,
        "hearth_source": stamp.editable(HEARTH_DISTRIBUTION, ("hearth",), skip=HEARTH_NOT_NODES),
        "entry_points": _entry_points(options, stamp),
        "custom_nodes": [stamp.tree(Path(folder)) for folder in options.custom_nodes],
    }
    return identity, parts, stamp.newest


def _entry_points(options: RuntimeOptions, stamp: Stamp) -> list[Any]:
    """Every entry point by name, target, distribution and version; the files of an editable distribution only
    where its plugin would load (an allow-list that leaves a plugin out makes its edits irrelevant)."""
    env = os.environ if options.environ is None else options.environ
    allowed = set(options.allow) if options.allow is not None else _names(env.get("HEARTH_PLUGINS"))
    disabled = set(options.disable) if options.disable is not None else (_names(env.get("HEARTH_DISABLE_PLUGINS"))
                                                                         or set())
    found: list[Any] = []
    seen: set[str] = set()
    for group in ENTRY_POINT_GROUPS:
        if group == "hearth" and not options.entry_points:
            continue
        for ep in importlib.metadata.entry_points(group=group):
            dist = ep.dist
            name = (dist.metadata["Name"] or "") if dist is not None else ""
            version = dist.version if dist is not None else ""
            found.append([group, ep.name, ep.value, name, version])
            loads = ep.name not in disabled and (allowed is None or ep.name in allowed)
            if dist is not None and loads and name not in seen:
                seen.add(name)
                found.append(["source", name, stamp.editable_dist(dist, {ep.module.partition(".")[0]})])
    if options.site_packages is not None:
        from hearth.core.plugins import distributions_in, top_level_names

        for dist in distributions_in(options.site_packages):
            found.append(["env", dist.metadata["Name"], dist.version,
                          stamp.editable_dist(dist, top_level_names(dist))])
    return found


def _names(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class Stamp:
    """Stat signatures of folders, keeping the newest modification time seen."""

    def __init__(self) -> None:
        self.newest = 0

    def tree(self, root: Path, skip: frozenset[str] = frozenset()) -> list[Any]:
        """``[relative path, size, mtime_ns]`` of every file under ``root`` (sorted; caches and VCS folders left
        out, and the folders right under ``root`` named in ``skip``), or ``[]`` when it does not exist."""
        rows: list[Any] = []
        if not root.is_dir():
            return rows
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS and not (folder == str(root) and d in skip))
            for name in sorted(files):
                path = os.path.join(folder, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                self.newest = max(self.newest, st.st_mtime_ns)
                rows.append([os.path.relpath(path, root), st.st_size, st.st_mtime_ns])
        return rows

    def editable(self, distribution: str, packages: Iterable[str], skip: frozenset[str] = frozenset()) -> list[Any]:
        try:
            dist = importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            return []
        return self.editable_dist(dist, set(packages), skip)

    def editable_dist(self, dist: importlib.metadata.Distribution, packages: set[str],
                      skip: frozenset[str] = frozenset()) -> list[Any]:
        """The stat signature of an editable distribution's packages (``[]`` for an ordinary install, whose
        version changes whenever its files do), less the subfolders named in ``skip``."""
        try:
            direct = json.loads(dist.read_text("direct_url.json") or "{}")
        except (OSError, ValueError):
            direct = {}
        editable = isinstance(direct, dict) and bool((direct.get("dir_info") or {}).get("editable"))
        rows: list[Any] = []
        for package in sorted(packages):
            try:
                spec = importlib.util.find_spec(package)
            except (ImportError, ValueError):
                continue
            if spec is None:
                continue
            for location in spec.submodule_search_locations or ([spec.origin] if spec.origin else []):
                path = Path(location)
                # A package outside every site-packages folder runs from a checkout (`setup.py develop`, an
                # egg-link, a path entry) even where no direct_url.json says "editable".
                if editable or not {"site-packages", "dist-packages"} & set(path.parts):
                    rows.append([package, str(path), self.tree(path, skip) if path.is_dir() else self.file(path)])
        return rows

    def file(self, path: Path) -> list[Any]:
        try:
            st = path.stat()
        except OSError:
            return []
        self.newest = max(self.newest, st.st_mtime_ns)
        return [st.st_size, st.st_mtime_ns]
