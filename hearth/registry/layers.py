"""Own dependency layers: a ComfyUI-format pack whose Python requirements cannot live beside the others' gets its own.

When the joint resolution of an environment's packs fails because their Python requirements conflict (two packs
needing ``tinydep<2`` and ``tinydep>=2``), or always where the user says so, each such pack's requirements are
resolved on their own, still under the environment's base (Hearth, torch, ...: pinned exactly as in the joint
resolution, never installed, never replaced), and installed into a layer of the generation::

    generations/<N>/custom_nodes/<folder>/      the pack itself, as for any ComfyUI-format pack
    generations/<N>/layers/<folder>/            its own resolution, installed with ``uv pip sync --target``: a flat
                                                site folder (packages and .dist-info at its top, scripts in bin/)
                                                that goes FIRST on the pack host's sys.path, as is
    generations/<N>/layers.json                 {"<folder>": {"path": "layers/<folder>", "pack": "<pack name>",
                                                 "packages": {"<name>": "<version>", ...}}}  ({} without layers)

The rest of the environment is resolved without the layered packs and goes into the generation's venv as before. A
layered pack cannot run in Hearth's own process (its packages would shadow or be shadowed by the venv's): the loader
runs it in a pack host whatever the trust policy says ("has its own dependency layer").

The lock (pylock.toml) says which layer each package belongs to, in the tool table PEP 751 keeps for installers::

    [[packages]]
    name = "tinydep"
    version = "1.0"
    wheels = [...]
    [packages.tool.hearth]
    layer = "pack-a"            # the canonical name of the pack whose layer holds it

The layered pack's own entry carries its own name as its layer; a package without the table is in the venv. One
name may appear once per layer. ``comfy sync`` and rollback rebuild or reuse exactly these layers.

The mode is ``conflicts`` (layer only the packs a failed joint resolution names), ``always`` (every ComfyUI-format
pack gets a layer) or ``never`` (today's joint resolution only): ``$COMFY_LAYERS``, else ``layers = "..."`` in the
user's config file, else ``conflicts``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name

from hearth.registry.config import ConfigError, load_config
from hearth.registry.lock import Lock, LockedPackage, needs_in

ENV_LAYERS = "COMFY_LAYERS"
MODES = ("conflicts", "always", "never")
DEFAULT_MODE = "conflicts"
LAYERS_DIR = "layers"
LAYERS_JSON = "layers.json"


def layer_mode(environ: dict[str, str] | None = None) -> str:
    """`$COMFY_LAYERS`, else the config file's ``layers``, else ``conflicts``; ConfigError names a bad value."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_LAYERS, "").strip().lower()
    where = f"${ENV_LAYERS}"
    if not value:
        config = load_config()
        value, where = (config.layers or "").strip().lower(), f"{config.path}: layers"
    if not value:
        return DEFAULT_MODE
    if value not in MODES:
        raise ConfigError(f"{where} = {value!r} is not a layer mode: use one of {', '.join(MODES)}")
    return value


# -- locks -----------------------------------------------------------------------------------------------------------

def layers_of(lock: Lock) -> dict[str, list[LockedPackage]]:
    """layer (the pack's canonical name) -> its packages, the pack's own entry first; the venv's are under ""."""
    groups: dict[str, list[LockedPackage]] = {"": []}
    for p in lock.packages:
        groups.setdefault(p.layer, []).append(p)
    for layer, group in groups.items():
        if layer:
            own = [p for p in group if p.name == layer]
            if len(own) != 1:
                raise ValueError(f"layer {layer!r} of the lock does not hold its pack {layer!r} exactly once")
            group.sort(key=lambda p: p.name != layer)
    return groups


def in_layer(packages: Iterable[LockedPackage], layer: str) -> list[LockedPackage]:
    """`packages` moved into `layer` (for a layered pack's own resolution)."""
    return [LockedPackage(p.name, p.version, p.artifact, p.index, layer) for p in packages]


def conflict_packs(uv_error: str, requested: Iterable[str]) -> list[str]:
    """The requested packs (canonical names) that uv's failed resolution speaks of, in `requested` order."""
    named = {canonicalize_name(n.pack) for n in needs_in(uv_error)}
    words = {canonicalize_name(w) for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]|[A-Za-z0-9]", uv_error)}
    out = []
    for name in requested:
        key = canonicalize_name(name)
        if (key in named or key in words) and key not in out:
            out.append(key)
    return out


# -- the generation's record ---------------------------------------------------------------------------------------

def layers_record(groups: dict[str, list[LockedPackage]], folders: dict[str, str]) -> dict[str, dict]:
    """layers.json's content: pack folder -> {"path", "pack", "packages"} (the pack itself not among them)."""
    record = {}
    for layer, group in groups.items():
        if not layer:
            continue
        folder = folders[layer]
        record[folder] = {"path": f"{LAYERS_DIR}/{folder}", "pack": layer,
                          "packages": {p.name: p.version for p in group if p.name != layer}}
    return dict(sorted(record.items()))


def write_layers(generation: Path, record: dict[str, dict]) -> None:
    (generation / LAYERS_JSON).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_layers(generation: Path) -> dict[str, dict]:
    """A generation's layers.json ({} for a generation without layers or made before layers existed)."""
    try:
        data = json.loads((generation / LAYERS_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{generation / LAYERS_JSON} unreadable: {exc}") from None
    return data if isinstance(data, dict) else {}


def installed_in(folder: Path) -> dict[str, str]:
    """canonical name -> version of the distributions in a site folder (a venv's site-packages or a layer)."""
    out = {}
    for d in folder.glob("*.dist-info") if folder.is_dir() else ():
        dist, _, version = d.name[:-len(".dist-info")].partition("-")
        out[canonicalize_name(dist)] = version
    return out
