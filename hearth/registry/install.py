"""Installing packs into an environment: resolve with uv, lock, fetch with hash checks, build a generation, switch.

Every change builds a complete new generation beside the current one and switches to it only at the end, so a
failed, refused or killed install leaves the environment exactly as it was. Torch and the rest of the base are
pinned by URL constraints to empty stand-in wheels: uv resolves against their exact versions, never looks them
up on an index, and they are left out of the lock, so an environment never downloads a second torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from hearth.registry.artifacts import Progress, comfyui_entry, extract_custom_node, fetch
from hearth.registry.base import base_constraints as _base_constraints
from hearth.registry.base import base_drift
from hearth.registry.config import Index
from hearth.registry.envs import (
    Environment,
    finish_generation,
    fix_scripts,
    hearth_home,
    make_venv,
    read_generation,
    uv_binary,
    venv_site_packages,
    write_generation,
)
from hearth.registry.layers import (
    LAYERS_DIR,
    conflict_packs,
    in_layer,
    installed_in,
    layer_mode,
    layers_of,
    layers_record,
    write_layers,
)
from hearth.registry.lock import (
    NOT_FOUND,
    Lock,
    LockedPackage,
    LockError,
    conflict_message,
    lock_text,
    needs_in,
    parse_lock,
    unpin,
)
from hearth.registry.sources import (
    ENV_PYPI,
    InstallError,
    Sources,
    find_sources,
    index_versions,
    newer_on_registry,
    parse_spec,
    registry_stand_ins,
    resolution_input,
)
from hearth.registry.trust import record_publishers

ENV_PAUSE = "HEARTH_TEST_PAUSE_BEFORE_SWITCH"  # tests: write this file, then wait, just before the switch


@dataclass
class Result:
    """What a change did: the generation it made (None when nothing changed) and the packs before and after."""

    env: Environment
    generation: int | None
    packs: dict
    added: dict = field(default_factory=dict)  # pack -> version
    removed: dict = field(default_factory=dict)
    changed: dict = field(default_factory=dict)  # pack -> (old, new)
    python_packages: int = 0
    layers: dict = field(default_factory=dict)  # layered pack -> its layer's folder (layers/<pack folder>)
    lock_path: Path | None = None
    seconds: float = 0.0
    message: str = ""


# -- requested specs -----------------------------------------------------------------------------------------------

def merge_specs(old: list[str], new: Iterable[str]) -> list[str]:
    """The requested list with each new spec replacing an old one for the same pack."""
    merged = {canonicalize_name(parse_spec(s).name): s for s in old}
    for s in new:
        merged[canonicalize_name(parse_spec(s).name)] = str(parse_spec(s))
    return [merged[k] for k in sorted(merged)]


# -- the base: stand-in wheels -------------------------------------------------------------------------------------

def base_constraints(env: Environment) -> Path:
    """A constraints file pinning each base package to a local stand-in of its exact version (made once per base)."""
    return _base_constraints(env.root, env.base)


# -- resolving -----------------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    return Path(os.environ["UV_CACHE_DIR"]) if os.environ.get("UV_CACHE_DIR") else hearth_home() / "cache" / "uv"


def _uv_env(sources: Sources) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_INDEX", "PIP_"))}
    for i, r in enumerate(sources.indexes):
        if r.token:
            env[f"UV_INDEX_HEARTH{i}_USERNAME"] = "__token__"
            env[f"UV_INDEX_HEARTH{i}_PASSWORD"] = r.token
    env["UV_NO_CONFIG"] = "1"  # a user's uv.toml must not add indexes the registries' priority does not know
    return env


def _index_args(sources: Sources) -> list[str]:
    args = []
    for i, r in enumerate(sources.indexes):
        args += ["--index", f"hearth{i}={r.url}/simple"]
    if sources.pypi:
        args += ["--default-index", sources.pypi]
    else:
        empty = hearth_home() / "cache" / "empty-index"
        empty.mkdir(parents=True, exist_ok=True)
        args += ["--default-index", empty.as_uri()]
    for link in sources.find_links:
        args += ["--find-links", link]
    args += ["--index-strategy", "first-index"]  # a name is taken only from the first index that has it
    if sources.offline:
        args.append("--offline")
    return args


def resolve(env: Environment, specs: list[str], sources: Sources, *, prefer: str | None = None,
            upgrade: Iterable[str] | bool = (), progress: Progress | None = None,
            known: dict[str, str] | None = None, refresh: bool = True) -> str:
    """pylock.toml text for `specs` under the environment's base (which it leaves out); InstallError on conflict.

    `prefer` is an earlier lock whose versions uv keeps unless a spec or `upgrade` asks otherwise. The packages
    named in `upgrade` are fetched afresh (``--upgrade-package``) unless `refresh` is false: then they are only
    taken out of the preferences, and uv trusts its cache of their index pages (it revalidates a page that says
    nothing of caching, as a Hearth registry's do); the caller checks the registries' own pages instead. That
    spares uv treating its whole cache as stale, which makes it query the interpreter again: a tenth of a second.
    """
    (progress or Progress()).step(f"resolving {len(specs)} pack{'s' if len(specs) != 1 else ''}")
    upgrade = True if upgrade is True else list(upgrade or ())
    work = Path(tempfile.mkdtemp(prefix="hearth-resolve-"))  # never inside the environment
    try:
        (work / "requirements.in").write_text("\n".join(specs) + "\n", encoding="utf-8")
        out = work / "pylock.toml"
        freed: set[str] = set()  # the names given to --upgrade-package, which frees and refreshes them
        if upgrade and upgrade is not True:
            freed = {canonicalize_name(n) for n in upgrade}
            if not refresh:  # freed by taking them out of the preferences; a lock unpin cannot edit keeps the flag
                prefer, freed = unpin(prefer, upgrade) if prefer else (prefer, set())
        options = ["--quiet", "--no-header", "--format", "pylock.toml", "--generate-hashes", "--output-file",
                   str(out), "--constraints", str(base_constraints(env)), "--python", sys.executable,
                   "--cache-dir", str(cache_dir()), *_index_args(sources)]
        for name in env.base:
            options += ["--no-emit-package", name]
        if upgrade is True:
            options.append("--upgrade")
        elif upgrade:
            for name in upgrade:
                if canonicalize_name(name) in freed:
                    options += ["--upgrade-package", name]
        if not specs:
            return lock_text([])
        # Registries come first in the index order, so a pack is never taken from the Python package index. A
        # registry's package under a reserved name (a Python project's) that no one asked for as a pack is then
        # pinned to the Python package index and the whole set resolved again: dependency confusion either way
        # round is closed (registry packs cannot stand in for Python projects, PyPI cannot stand in for packs).
        requested = [parse_spec(s).name for s in specs]
        pypi_only: set[str] = set()
        while True:
            if prefer:
                out.write_text(prefer, encoding="utf-8")
            else:
                out.unlink(missing_ok=True)
            source = work / "requirements.in"
            if pypi_only:
                source = work / "pyproject.toml"
                source.write_text(resolution_input(specs, pypi_only, sources.pypi or ""), encoding="utf-8")
            proc = subprocess.run([uv_binary(), "pip", "compile", str(source), *options], capture_output=True,
                                  text=True, env=_uv_env(sources), cwd=work)
            if proc.returncode != 0:
                raise InstallError(_explain(proc.stderr or proc.stdout, env, sources, known or {}),
                                   uv_error=proc.stderr or proc.stdout)
            text = out.read_text(encoding="utf-8")
            more = registry_stand_ins(parse_lock(text, "resolved lock").packages, requested, sources) - pypi_only
            if not more:
                return text
            if not sources.pypi:
                name = sorted(more)[0]
                raise InstallError(f"{name!r} is a Python package index project, but only a registry offers a "
                                   f"package of that name; a pack's dependency on {name} is never taken from a "
                                   f"registry: set {ENV_PYPI} to a Python package index")
            pypi_only |= more
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unavailable(uv_error: str) -> list[str]:
    """The names uv found no (installable) version of at all."""
    names = [m.group("pkg") for m in NOT_FOUND.finditer(uv_error)]
    return names + [m.group(1) for m in re.finditer(r"there (?:is|are) no versions? of ([A-Za-z0-9][A-Za-z0-9._-]*)"
                                                    r"(?:[\s,.]|$)", uv_error)]


def _explain(uv_error: str, env: Environment, sources: Sources, known: dict[str, str]) -> str:
    for name in _unavailable(uv_error):
        registry = known.get(canonicalize_name(name))
        if registry:  # the registry has the pack, but its simple index offers nothing uv may install
            return (f"pack {name!r} is on {registry} but none of its versions can be installed from "
                    f"{registry}/simple/ (pending verification, flagged or yanked: see `comfy info {name}`; "
                    "a registry without a simple index needs a Hearth registry in mirror mode in front of it)")
    unversioned = {n.pack for n in needs_in(uv_error) if not n.version}
    message = conflict_message(uv_error, env.base, index_versions(unversioned, sources) if unversioned else None)
    if sources.offline:
        return f"{message} (offline: only what uv has cached from these registries can be used)"
    return message


# -- own dependency layers (registry/layers.py) ---------------------------------------------------------------------

class LayerError(InstallError):
    """A pack's requirements cannot be resolved even in a layer of its own; `prefix` says so before uv's reason."""

    def __init__(self, pack: str, message: str, uv_error: str):
        self.prefix = f"pack {pack!r} cannot be installed, not even alone in its own dependency layer: "
        super().__init__(self.prefix + message, uv_error=uv_error)


def _prefer_in(prefer: str | None, layer: str) -> str | None:
    """The part of an earlier lock that is `layer`'s (the venv's for ""), as a plain lock uv can take as preferences.

    A lock without layers is given whole to every resolution: its versions are only preferences.
    """
    if not prefer:
        return prefer
    try:
        old = parse_lock(prefer, "earlier lock")
    except LockError:
        return None
    if not any(p.layer for p in old.packages):
        return prefer
    return lock_text(in_layer([p for p in old.packages if p.layer == layer], ""))


def _is_comfyui_pack(own: LockedPackage, sources: Sources, progress: Progress | None) -> bool:
    path = fetch(Lock([own]), sources, progress)[own.name]
    return path.suffix == ".whl" and comfyui_entry(path) is not None


def resolve_layered(env: Environment, specs: list[str], sources: Sources, *, mode: str | None = None,
                    prefer: str | None = None, upgrade: Iterable[str] | bool = (),
                    progress: Progress | None = None, known: dict[str, str] | None = None,
                    refresh: bool = True) -> str:
    """pylock.toml text for `specs`, with own dependency layers where `mode` calls for them (see registry/layers.py).

    ``conflicts``: the joint resolution first; when uv refuses it, each requested ComfyUI-format pack its
    explanation names is resolved on its own (a layer) and the rest again without them, until the rest resolves or
    no layerable pack is left to take out (then uv's first explanation stands). ``always``: every requested
    ComfyUI-format pack gets a layer. ``never``: the joint resolution alone. A pack whose own requirements cannot
    be met fails with uv's reason for that pack (LayerError).
    """
    mode = mode or layer_mode()
    progress = progress or Progress()
    kwargs = {"upgrade": upgrade, "known": known, "refresh": refresh}
    main_prefer = _prefer_in(prefer, "")
    names = {canonicalize_name(parse_spec(s).name): s for s in specs}
    first_error: InstallError | None = None
    candidates: list[str] = []
    if mode == "always":
        candidates = list(names)
    else:
        try:
            return resolve(env, specs, sources, prefer=main_prefer, progress=progress, **kwargs)
        except InstallError as exc:
            if mode == "never" or not exc.uv_error:
                raise
            first_error = exc
            candidates = conflict_packs(exc.uv_error, names)
            if not candidates or len(names) == 1:  # one pack alone: uv has already said why it cannot be
                raise
    layered: dict[str, list[LockedPackage]] = {}
    tried: set[str] = set()
    while True:
        for name in candidates:
            tried.add(name)
            try:
                own_body = resolve(env, [names[name]], sources, prefer=_prefer_in(prefer, name), **kwargs)
            except InstallError as exc:
                if not exc.uv_error or name in {canonicalize_name(n) for n in _unavailable(exc.uv_error)}:
                    raise  # the pack itself cannot be had (not found, nothing installable): no layer changes that
                raise LayerError(name, _explain(exc.uv_error, env, sources, known or {}), exc.uv_error) from None
            own_lock = parse_lock(own_body, f"resolved lock of {name}")
            own = own_lock.by_name().get(name)
            if own is None or not _is_comfyui_pack(own, sources, progress):
                continue  # a Hearth-format pack runs in Hearth's process: it cannot have a layer of its own
            layered[name] = in_layer(own_lock.packages, name)
            why = "always, by config" if mode == "always" else "its requirements conflict with the other packs'"
            progress.step(f"{name}: its own dependency layer ({why})")
        rest = [s for key, s in names.items() if key not in layered]
        if first_error is not None and not layered:
            raise first_error
        try:
            body = resolve(env, rest, sources, prefer=main_prefer, progress=progress, **kwargs) if rest \
                else lock_text([])
            break
        except InstallError as exc:
            if not exc.uv_error or mode == "always":
                raise
            candidates = [n for n in conflict_packs(exc.uv_error, rest) if n not in tried]
            if not candidates:
                raise
    if not layered:
        return body
    main = [p for p in parse_lock(body, "resolved lock").packages if p.name not in layered]
    return lock_text(main + [p for group in layered.values() for p in group])


# -- generations ---------------------------------------------------------------------------------------------------

def _pause_for_tests() -> None:
    flag = os.environ.get(ENV_PAUSE)
    if flag:
        Path(flag).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(120)


def fetch_layers(lock: Lock, sources: Sources, progress: Progress | None = None) -> dict[str, dict[str, Path]]:
    """Every artifact of the lock in the cache, hash-checked: layer ("" for the venv) -> name -> path."""
    groups = layers_of(lock)
    return {layer: fetch(Lock(group), sources, progress) for layer, group in groups.items()}


def build_generation(env: Environment, lock: Lock, files: dict[str, dict[str, Path]], sources: Sources, *,
                     action: str, requested: list[str], lock_body: str, progress: Progress | None = None) -> int:
    """Make the next generation from `lock` (artifacts fetched and checked by `fetch_layers`) and switch to it."""
    progress = progress or Progress()
    with env.locked():
        parent = env.generation
        gen = env.next_generation_dir()
        try:
            _populate(env, gen, lock, files, sources, requested, progress)
            (gen / "pylock.toml").write_text(lock_body, encoding="utf-8")
            _write_lock_digest(gen, lock_body)
            packs = _packs_record(gen, lock, sources, requested)
            record_publishers(packs, {i.url: i.token for i in sources.indexes}, offline=sources.offline)
            write_generation(gen, action=action, packs=packs, requested=requested, parent=parent, pending=True)
            _pause_for_tests()
        except BaseException:
            # Not switched to: remove it now (a SIGKILL skips this; the next change's cleanup covers that case).
            shutil.rmtree(gen, ignore_errors=True)
            raise
        env.switch_to(int(gen.name))
        finish_generation(gen)
        return int(gen.name)


def _sync_into(env: Environment, gen: Path, packages: list[LockedPackage], files: dict[str, Path],
               sources: Sources, where: list[str]) -> None:
    """uv pip sync of `packages` (local, hash-checked files) into the place `where` names (--prefix/--target)."""
    install_lock = gen / "pylock.install.toml"
    install_lock.write_text(lock_text(packages, paths={p.name: str(files[p.name]) for p in packages}),
                            encoding="utf-8")
    try:
        # Every file is local and hash-checked again by uv; the indexes only serve an sdist's build needs.
        proc = subprocess.run(
            [uv_binary(), "pip", "sync", str(install_lock), "--python", sys.executable, *where,
             "--cache-dir", str(cache_dir()), "--quiet", "--preview-features", "pylock",
             "--require-hashes", *_index_args(sources)],
            capture_output=True, text=True, env=_uv_env(sources))
    finally:
        install_lock.unlink()
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).split())[-500:]
        raise InstallError(f"installing into environment {env.name!r} failed, nothing changed: {tail}")


def _extract_pack(p: LockedPackage, wheel: Path, entry: tuple[str, str], custom_nodes: Path) -> None:
    # uv re-checks the hash of every file it installs; these it never sees, so check the cached copy here.
    if _file_sha256(wheel) != p.artifact.sha256:
        raise InstallError(f"{p.name} {p.version}: the cached {wheel.name} no longer matches the "
                           f"lock's sha256 (tampered or corrupt); delete {wheel.parent} and retry")
    extract_custom_node(wheel, entry[0], entry[1], custom_nodes)


def _populate(env: Environment, gen: Path, lock: Lock, files: dict[str, dict[str, Path]], sources: Sources,
              requested: list[str], progress: Progress) -> None:
    """The generation's venv with the lock's Python packages, its custom_nodes/ with the ComfyUI packs, and each
    layered pack's own packages in layers/<pack folder>/ (with layers.json)."""
    progress.step(f"building generation {gen.name}")
    make_venv(gen / "venv", env.template)
    custom_nodes = gen / "custom_nodes"
    custom_nodes.mkdir()
    groups = layers_of(lock)
    venv_files = files[""]
    layout: dict[str, tuple[str, str] | None] = {p.name: comfyui_entry(venv_files[p.name])
                                                 if venv_files[p.name].suffix == ".whl" else None
                                                 for p in groups[""]}
    python_pkgs = [p for p in groups[""] if layout[p.name] is None]
    if python_pkgs:
        progress.step(f"installing {len(python_pkgs)} package{'s' if len(python_pkgs) != 1 else ''}")
        # --prefix with Hearth's interpreter, which uv knows from its cache, rather than the new venv's, which it
        # would first have to run to inspect: the same files land in the venv, a tenth of a second sooner.
        _sync_into(env, gen, python_pkgs, venv_files, sources, ["--prefix", str(gen / "venv")])
        fix_scripts(gen / "venv", sys.executable)
    for p in groups[""]:
        entry = layout[p.name]
        if entry is not None:
            _extract_pack(p, venv_files[p.name], entry, custom_nodes)
    folders: dict[str, str] = {}
    for layer, group in groups.items():
        if not layer:
            continue
        own, deps = group[0], group[1:]
        wheel = files[layer][own.name]
        entry = comfyui_entry(wheel) if wheel.suffix == ".whl" else None
        if entry is None:
            raise InstallError(f"{own.name} {own.version}: the lock gives it its own dependency layer, but it is not "
                               "a ComfyUI-format pack (only those run in a pack host); run `comfy lock` again")
        layout[own.name] = entry
        folders[layer] = entry[0]
        _extract_pack(own, wheel, entry, custom_nodes)
        target = gen / LAYERS_DIR / entry[0]
        target.mkdir(parents=True)
        if deps:
            progress.step(f"installing {len(deps)} package{'s' if len(deps) != 1 else ''} into the layer of "
                          f"{own.name}")
            # --target: a flat folder whose top is what goes on the pack host's sys.path (scripts in its bin/).
            # Compiled now: the host sees the layer read-only, so Python could never cache its bytecode there.
            _sync_into(env, gen, deps, files[layer], sources, ["--target", str(target), "--compile-bytecode"])
            (target / ".lock").unlink(missing_ok=True)  # uv's own lock file, of no use once installed
    write_layers(gen, layers_record(groups, folders))
    (gen / "layout.json").write_text(json.dumps({k: list(v) for k, v in layout.items() if v}), encoding="utf-8")


def _packs_record(gen: Path, lock: Lock, sources: Sources, requested: list[str]) -> dict[str, dict]:
    """pack -> version, registry, format, folder (ComfyUI packs) and the spec the user asked for ("" if none)."""
    layout = json.loads((gen / "layout.json").read_text(encoding="utf-8"))
    wanted = {canonicalize_name(parse_spec(s).name): s for s in requested}
    packs: dict[str, dict] = {}
    for p in lock.packages:
        if p.layer and p.layer != p.name:
            continue  # a layered pack's own dependency: a Python package, even when a registry supplied it
        registry = sources.registry_for_url(p.artifact.url)
        entry = layout.get(p.name)
        if registry or entry or p.name in wanted:
            packs[p.name] = {"version": p.version, "registry": registry, "format": "comfyui" if entry else "hearth",
                             "folder": entry[0] if entry else "", "requested": wanted.get(p.name, "")}
            if p.layer:
                packs[p.name]["layer"] = f"{LAYERS_DIR}/{entry[0]}"
    return packs


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write_lock_digest(gen: Path, lock_body: str) -> None:
    (gen / "lock.sha256").write_text(_digest(lock_body) + "\n", encoding="utf-8")


def _diff(old: dict, new: dict, result: Result) -> None:
    for name, info in new.items():
        if name not in old:
            result.added[name] = info["version"]
        elif old[name]["version"] != info["version"]:
            result.changed[name] = (old[name]["version"], info["version"])
    for name, info in old.items():
        if name not in new:
            result.removed[name] = info["version"]


def _apply(env: Environment, requested: list[str], sources: Sources, *, action: str, upgrade=(),  # noqa: ANN001
           progress: Progress | None = None, dry_run: bool = False, keep_prefs: bool = True,
           known: dict[str, str] | None = None, resolved: Callable[[Lock], list[str]] | None = None,
           refresh: bool = True) -> Result:
    started = time.perf_counter()
    current = env.current()
    drift = base_drift(env)
    if drift and progress is not None:
        name, (was, now) = sorted(drift.items())[0]
        progress.step(f"warning: environment {env.name!r} pins {name} {was} but Hearth now runs {now} "
                      f"({len(drift)} base package(s) changed); packs are resolved against the recorded base")
    old_lock = env.lock_path.read_text(encoding="utf-8") if env.lock_path.exists() else None
    prefer = old_lock if keep_prefs else None
    body = resolve_layered(env, requested, sources, prefer=prefer, upgrade=upgrade, progress=progress,
                           known=known, refresh=refresh)
    lock = parse_lock(body, "resolved lock")
    # A last check before anything is fetched or built; it names the packs uv should have found newer versions of.
    if resolved is not None and resolved(lock):
        body = resolve_layered(env, requested, sources, prefer=prefer, upgrade=upgrade, known=known, refresh=True)
        lock = parse_lock(body, "resolved lock")
    result = Result(env, None, current.packs, python_packages=len(lock.packages))
    if dry_run:
        result.lock_path = None
        result.message = body
        return result
    if old_lock is not None and _digest(old_lock) == _digest(body) and requested == current.requested:
        result.message = "nothing to change"
        result.seconds = time.perf_counter() - started
        return result
    files = fetch_layers(lock, sources, progress)
    number = build_generation(env, lock, files, sources, action=action, requested=requested, lock_body=body,
                              progress=progress)
    new = read_generation(env.generation_dir(number))
    result.generation, result.packs, result.lock_path = number, new.packs, env.lock_path
    result.layers = {n: info["layer"] for n, info in new.packs.items() if info.get("layer")}
    _diff(current.packs, new.packs, result)
    result.seconds = time.perf_counter() - started
    return result


# -- the commands' library side ------------------------------------------------------------------------------------

def install(env: Environment, specs: list[str], *, indexes: list[Index], workflow_packs: Iterable[str] | None = None,
            progress: Progress | None = None, offline: bool = False, sources: Sources | None = None) -> Result:
    """Add `specs` (and `workflow_packs`) to the environment's packs, resolve everything together, switch."""
    specs = list(specs) + [p for p in (workflow_packs or ()) if p]
    if not specs:
        raise InstallError("nothing to install: name at least one pack (comfy install PACK[==VERSION])")
    sources = sources or Sources.from_environment(indexes, offline)
    requested = merge_specs(env.current().requested, specs)
    words = " ".join(specs)
    if offline:  # nothing can be fetched afresh: the named packs are only freed from the lock's versions
        return _apply(env, requested, sources, action=f"install {words}",
                      upgrade=[parse_spec(s).name for s in specs], progress=progress, refresh=False)
    # Which registry owns each pack is asked while uv resolves (the answers overlap); the answer still decides:
    # a pack no registry has, or a registry that cannot answer, stops the install before anything is fetched.
    # The same pages, read just now, say whether uv resolved from a stale cached page: then it resolves again,
    # fetching the named packs afresh (rare: a Hearth registry's pages are revalidated on every use).
    pages: dict[str, dict] = {}

    def check(lock: Lock) -> list[str]:
        owners.result()
        return newer_on_registry(specs, {p.name: p.version for p in lock.packages}, pages)

    with ThreadPoolExecutor(1) as pool:
        owners = pool.submit(find_sources, specs, list(sources.indexes), pages)
        try:
            return _apply(env, requested, sources, action=f"install {words}",
                          upgrade=[parse_spec(s).name for s in specs], progress=progress, resolved=check,
                          refresh=False)
        except InstallError as exc:
            if not exc.uv_error:
                raise
            known = owners.result()  # its own error (not found, offline, refused) outranks uv's
            prefix = exc.prefix if isinstance(exc, LayerError) else ""
            raise InstallError(prefix + _explain(exc.uv_error, env, sources, known), uv_error=exc.uv_error) from None


def uninstall(env: Environment, names: list[str], *, indexes: list[Index], progress: Progress | None = None,
              offline: bool = False, sources: Sources | None = None) -> Result:
    current = env.current()
    have = {canonicalize_name(parse_spec(s).name): s for s in current.requested}
    gone = [canonicalize_name(n) for n in names]
    missing = [n for n, key in zip(names, gone, strict=True) if key not in have]
    if missing:
        listed = ", ".join(sorted(have)) or "none"
        raise InstallError(f"{', '.join(missing)} not installed by request in environment {env.name!r} "
                           f"(requested packs: {listed})")
    requested = [s for key, s in sorted(have.items()) if key not in gone]
    sources = sources or Sources.from_environment(indexes, offline)
    return _apply(env, requested, sources, action=f"uninstall {' '.join(names)}", progress=progress)


def update(env: Environment, names: list[str] | None = None, *, indexes: list[Index],
           progress: Progress | None = None, offline: bool = False, sources: Sources | None = None) -> Result:
    """Re-resolve for newer versions: of `names` (and what they need), or of everything when none are named."""
    current = env.current()
    have = {canonicalize_name(parse_spec(s).name) for s in current.requested} | set(current.packs)
    unknown = [n for n in names or () if canonicalize_name(n) not in have]
    if unknown:
        raise InstallError(f"{', '.join(unknown)} not installed in environment {env.name!r}; "
                           f"install it with `comfy install {unknown[0]}`")
    sources = sources or Sources.from_environment(indexes, offline)
    upgrade = list(names) if names else True
    return _apply(env, current.requested, sources, action=f"update {' '.join(names or ['all'])}", upgrade=upgrade,
                  progress=progress)


def lock_only(env: Environment, specs: list[str] = (), *, indexes: list[Index], output: Path | None = None,
              upgrade: bool = False, progress: Progress | None = None, offline: bool = False,
              sources: Sources | None = None) -> tuple[str, list[str]]:
    """Resolve the environment's packs (plus `specs`) without installing; returns (lock text, requested)."""
    sources = sources or Sources.from_environment(indexes, offline)
    requested = merge_specs(env.current().requested, specs)
    old = env.lock_path.read_text(encoding="utf-8") if env.lock_path.exists() else None
    body = resolve_layered(env, requested, sources, prefer=old, upgrade=upgrade, progress=progress)
    parse_lock(body, "resolved lock")
    if output is not None:
        output.write_text(body, encoding="utf-8")
    return body, requested


def in_sync(env: Environment) -> bool:
    """True when the current generation was built from exactly the lock in the environment (a quick check)."""
    gen = env.generation_path
    try:
        recorded = (gen / "lock.sha256").read_text(encoding="utf-8").strip()
        body = env.lock_path.read_text(encoding="utf-8")
    except OSError:
        return False
    if recorded != _digest(body) or not env.python.exists():
        return False
    site = venv_site_packages(gen / "venv")
    packs = env.current().packs
    folders = {info["folder"] for info in packs.values() if info.get("format") == "comfyui"}
    if any(not (env.custom_nodes / f).is_dir() for f in folders):
        return False
    try:
        groups = layers_of(parse_lock(body, str(env.lock_path)))
    except (LockError, ValueError):
        return False
    comfy = {n for n, info in packs.items() if info.get("format") == "comfyui"}
    wanted = {p.name: p.version for p in groups[""] if p.name not in comfy}
    if installed_in(site) != wanted:  # nothing missing, nothing at another version, nothing extra
        return False
    for layer, group in groups.items():
        folder = packs.get(layer, {}).get("layer")
        if layer and (not folder or installed_in(gen / folder) != {p.name: p.version for p in group[1:]}):
            return False
    return True


def sync(env: Environment, lock_file: Path | None = None, *, indexes: list[Index] = (),
         progress: Progress | None = None, offline: bool = False, sources: Sources | None = None) -> Result:
    """Make the environment match a lock exactly (its own by default): a no-op when it already does.

    Works offline when every artifact is in the cache; otherwise downloads them (each hash checked).
    """
    started = time.perf_counter()
    sources = sources or Sources.from_environment(indexes, offline)
    current = env.current()
    if lock_file is None and in_sync(env):
        return Result(env, None, current.packs, message="already in sync",
                      seconds=time.perf_counter() - started, lock_path=env.lock_path)
    path = lock_file or env.lock_path
    try:
        body = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InstallError(f"{path}: cannot read the lock ({exc.strerror})") from None
    lock = parse_lock(body, str(path))
    if lock_file is not None and _digest(body) == _digest(env.lock_path.read_text(encoding="utf-8")) \
            and in_sync(env):
        return Result(env, None, current.packs, message="already in sync",
                      seconds=time.perf_counter() - started, lock_path=env.lock_path)
    base_hit = [p.name for p in lock.packages if p.name in env.base]
    if base_hit:
        raise InstallError(f"{path}: the lock would replace base package{'s' if len(base_hit) > 1 else ''} "
                           f"{', '.join(base_hit)}, which environment {env.name!r} takes from Hearth; "
                           "run `comfy lock` again")
    requested = current.requested
    in_lock = {p.name for p in lock.packages}
    requested = [s for s in requested if canonicalize_name(parse_spec(s).name) in in_lock]
    if lock_file is not None:
        packs = [p.name for p in lock.packages
                 if sources.registry_for_url(p.artifact.url) and (not p.layer or p.layer == p.name)]
        requested = merge_specs(requested, [n for n in packs
                                           if n not in {canonicalize_name(parse_spec(s).name) for s in requested}])
    try:
        layers_of(lock)
    except ValueError as exc:
        raise InstallError(f"{path}: {exc}; run `comfy lock` again") from None
    files = fetch_layers(lock, sources, progress)
    number = build_generation(env, lock, files, sources, action="sync" + (f" {path.name}" if lock_file else ""),
                              requested=requested, lock_body=body, progress=progress)
    new = read_generation(env.generation_dir(number))
    result = Result(env, number, new.packs, python_packages=len(lock.packages), lock_path=env.lock_path,
                    layers={n: info["layer"] for n, info in new.packs.items() if info.get("layer")})
    _diff(current.packs, new.packs, result)
    result.seconds = time.perf_counter() - started
    return result
