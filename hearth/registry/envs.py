"""Environments: folders of packs, each with numbered generations, one of which is current.

Layout of ``hearth_home()/envs/<name>/``::

    env.json            name, creation time, the base (Hearth's interpreter, site-packages, pinned packages)
    template/           the uv-made venv each generation's venv is cloned from
    generations/<N>/    one complete install: venv/ (a clone of template/), custom_nodes/, pylock.toml,
                        generation.json, layers.json and layers/<pack folder>/ (the own dependency layers of
                        packs whose requirements conflict with the others': registry/layers.py)
    current             symlink to generations/<N>; replaced with os.replace, so switching is atomic
    pylock.toml         symlink to current/pylock.toml: the current generation's lock
    .base-<digest>/     stand-in wheels of the base and the constraints file pinning resolution to them
                        (registry/base.py; made at create, remade when the base recorded in env.json changes)
    .lock               held (flock) by whoever changes the environment

A generation is written once and never changed. An install builds generation N+1 beside the current one with its
record under a pending name, switches ``current`` to it, and only then gives the record its final name; a failed or
killed install leaves a folder that is not current and has no final record, and the next change removes it (or, if
the switch had happened, completes the record). Rollback switches ``current`` back to an older generation.

The base (Hearth itself, torch, and what Hearth's runtime needs) is never installed into an environment: each
generation's site-packages holds a ``.pth`` file that adds Hearth's own site-packages, and resolution pins the base
to the exact versions recorded here.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hearth.registry.base import base_constraints, base_packages
from hearth.registry.pids import pid_alive

ENV_HOME = "HEARTH_HOME"
ENV_CURRENT = "COMFY_ENV"
DEFAULT_ENV = "default"
BASE_PTH = "_hearth_base.pth"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class EnvironmentError_(Exception):  # noqa: N801 - the trailing underscore keeps clear of the builtin
    """An environment cannot be found, made or changed; `str()` is one line naming it and what to do."""


def hearth_home() -> Path:
    """`$HEARTH_HOME`, else `$XDG_DATA_HOME/hearth`, else `~/.local/share/hearth`."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    base = Path(os.environ["XDG_DATA_HOME"]) if os.environ.get("XDG_DATA_HOME") else Path.home() / ".local/share"
    return base / "hearth"


def envs_dir() -> Path:
    return hearth_home() / "envs"


def _chosen_file() -> Path:
    return hearth_home() / "current-env"


def current_env_name() -> str:
    """`$COMFY_ENV`, else the name `comfy env use` stored, else ``default``."""
    if os.environ.get(ENV_CURRENT):
        return os.environ[ENV_CURRENT]
    try:
        name = _chosen_file().read_text(encoding="utf-8").strip()
    except OSError:
        name = ""
    return name or DEFAULT_ENV


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise EnvironmentError_(f"environment name {name!r} is not valid: use letters, digits, '.', '_' or '-' "
                                "(at most 64, starting with a letter or digit)")
    return name


@dataclass(frozen=True)
class Generation:
    """One generation's record, read from its generation.json."""

    number: int
    path: Path
    created: float
    action: str
    packs: dict  # pack id -> {"version", "registry", "format", "requested"}
    requested: list  # the user's pack specs this generation was resolved from

    @property
    def lock_path(self) -> Path:
        return self.path / "pylock.toml"


@dataclass(frozen=True)
class GenerationPaths:
    """Where one generation's parts are: what a process loading an environment needs."""

    number: int
    root: Path
    python: Path
    site_packages: Path
    custom_nodes: Path
    lock_path: Path


@dataclass(frozen=True)
class Environment:
    """A named environment: a folder whose ``current`` link names the generation in use."""

    name: str
    root: Path

    # -- the current generation ----------------------------------------------------------------------------------
    @property
    def current_path(self) -> Path:
        return self.root / "current"

    @property
    def generation(self) -> int:
        try:
            return int(Path(os.readlink(self.current_path)).name)
        except (OSError, ValueError):
            raise EnvironmentError_(f"environment {self.name!r} at {self.root} has no current generation; "
                                    f"remove it with `comfy env remove {self.name}` and create it again") from None

    @property
    def generation_path(self) -> Path:
        return self.generation_dir(self.generation)

    def generation_dir(self, number: int) -> Path:
        return self.root / "generations" / str(number)

    @property
    def python(self) -> Path:
        return venv_python(self.generation_path / "venv")

    @property
    def site_packages(self) -> Path:
        return venv_site_packages(self.generation_path / "venv")

    @property
    def custom_nodes(self) -> Path:
        return self.generation_path / "custom_nodes"

    @property
    def lock_path(self) -> Path:
        return self.root / "pylock.toml"

    @property
    def template(self) -> Path:
        """The uv-made venv that each generation's venv is cloned from."""
        return self.root / "template"

    def paths(self) -> GenerationPaths:
        """The current generation's folders from one reading of ``current``: consistent even if a switch follows."""
        number = self.generation
        gen = self.generation_dir(number)
        return GenerationPaths(number, gen, venv_python(gen / "venv"), venv_site_packages(gen / "venv"),
                               gen / "custom_nodes", gen / "pylock.toml")

    # -- records ---------------------------------------------------------------------------------------------------
    @property
    def info(self) -> dict:
        """env.json: the base recorded when the environment was made."""
        try:
            return json.loads((self.root / "env.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise EnvironmentError_(f"environment {self.name!r}: {self.root / 'env.json'} unreadable ({exc}); "
                                    f"remove it with `comfy env remove {self.name}`") from None

    @property
    def base(self) -> dict[str, str]:
        """Base packages, canonical name -> exact version: pinned in every resolution, never installed."""
        return dict(self.info.get("base", {}))

    def current(self) -> Generation:
        return read_generation(self.generation_path)

    def generations(self) -> list[Generation]:
        """Every complete generation, oldest first."""
        out = []
        folder = self.root / "generations"
        try:
            now = self.generation
        except EnvironmentError_:
            now = None
        for entry in folder.iterdir() if folder.is_dir() else ():
            # A pending record counts only for the current generation: elsewhere it is a killed install's leftover.
            if entry.name.isdigit() and ((entry / "generation.json").is_file()
                                         or (int(entry.name) == now and _record(entry) is not None)):
                with contextlib.suppress(EnvironmentError_):
                    out.append(read_generation(entry))
        return sorted(out, key=lambda g: g.number)

    def packs(self) -> dict:
        return self.current().packs

    # -- changes ---------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the environment's lock; on entry, clear what an earlier killed change left behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise EnvironmentError_(f"environment {self.name!r} is being changed by another comfy command; "
                                        "wait for it to finish") from None
            try:
                self._clear_unfinished()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _clear_unfinished(self) -> None:
        folder = self.root / "generations"
        try:
            current = self.generation_path
        except EnvironmentError_:
            current = None
        for link in self.root.glob(".current.*"):  # a switch killed before its rename
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
        for entry in folder.iterdir() if folder.is_dir() else ():
            if entry == current:
                finish_generation(entry)  # killed after the switch, before the record got its final name
            elif entry.name.startswith(".") or not (entry / "generation.json").is_file():
                shutil.rmtree(entry, ignore_errors=True)

    def next_generation_dir(self) -> Path:
        """The folder for the next generation (its number is one past every existing one). Call under `locked`."""
        folder = self.root / "generations"
        numbers = [int(e.name) for e in folder.iterdir() if e.name.isdigit()] if folder.is_dir() else []
        path = folder / str(max(numbers, default=-1) + 1)
        if path.exists():
            shutil.rmtree(path)
        return path

    def switch_to(self, number: int) -> None:
        """Make generation `number` current, atomically: a reader sees the old one or the new one, never neither."""
        target = self.generation_dir(number)
        if _record(target) is None:
            have = ", ".join(str(g.number) for g in self.generations())
            raise EnvironmentError_(f"environment {self.name!r} has no generation {number} (it has: {have})")
        tmp = self.root / f".current.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(Path("generations") / str(number), tmp)
        os.replace(tmp, self.current_path)
        _fsync_dir(self.root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


PENDING = "generation.pending.json"


def _record(path: Path) -> Path | None:
    """A generation's record: final, else pending (a generation being switched to)."""
    for name in ("generation.json", PENDING):
        if (path / name).is_file():
            return path / name
    return None


def finish_generation(path: Path) -> None:
    """Give a switched-to generation's record its final name: from now on it is one of the history."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(path / PENDING, path / "generation.json")


def read_generation(path: Path) -> Generation:
    record = _record(path)
    try:
        if record is None:
            raise FileNotFoundError("no generation.json")
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EnvironmentError_(f"generation record {path / 'generation.json'} unreadable: {exc}") from None
    return Generation(int(path.name), path, float(data.get("created", 0)), str(data.get("action", "")),
                      dict(data.get("packs", {})), list(data.get("requested", [])))


def write_generation(path: Path, *, action: str, packs: dict, requested: list, parent: int | None,
                     pending: bool = False) -> None:
    """Write the record last; `pending` names it so that it counts only once the switch to it has happened."""
    record = {"created": time.time(), "action": action, "packs": packs, "requested": requested, "parent": parent}
    tmp = path / "generation.json.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path / (PENDING if pending else "generation.json"))


# -- venvs ---------------------------------------------------------------------------------------------------------

def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def venv_site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


@functools.cache
def uv_binary() -> str:
    """The uv that came with Hearth (the `uv` package), else one on PATH (looked up once per process)."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise EnvironmentError_("uv is not installed: run `pip install uv` in Hearth's environment") from None
        return found


def hearth_site_dirs() -> list[str]:
    """The site-packages folders of the interpreter Hearth runs in: where the base packages live."""
    dirs = []
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in dirs:
            dirs.append(path)
    return dirs


def make_venv(venv: Path, template: Path | None = None) -> None:
    """A venv on Hearth's own interpreter, with a .pth that adds Hearth's site-packages (and so its torch).

    Made by uv, or cloned from `template` (a uv-made venv): a clone is the same few files and links with the
    folder's path rewritten, and takes milliseconds where asking uv to inspect the interpreter takes a tenth of
    a second, paid on every install.
    """
    if template is not None and (template / "pyvenv.cfg").is_file():
        _clone_venv(template, venv)
    else:
        result = subprocess.run([uv_binary(), "venv", "--quiet", "--python", sys.executable, str(venv)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise EnvironmentError_(f"uv could not make a virtual environment at {venv}: "
                                    f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    site = venv_site_packages(venv)
    site.mkdir(parents=True, exist_ok=True)
    # An `import` line in a .pth runs at startup; addsitedir also processes Hearth's own .pth files (editables).
    # Hearth's own process, which loads an environment by adding this folder, already has them: skip it there.
    lines = [f"import site, sys; {d!r} in sys.path or site.addsitedir({d!r})" for d in hearth_site_dirs()]
    (site / BASE_PTH).write_text("\n".join(lines) + "\n", encoding="utf-8")


ORIGIN = ".hearth-origin"  # in a template: the path it was made at, which its activate scripts name


def _clone_venv(template: Path, venv: Path) -> None:
    origin = template / ORIGIN
    old = origin.read_text(encoding="utf-8").strip() if origin.is_file() else str(template)
    new = str(venv)
    for src in sorted(template.rglob("*")):
        if src == origin:
            continue
        dest = venv / src.relative_to(template)
        if src.is_symlink():
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dest)
        elif src.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = src.read_bytes()
            dest.write_bytes(data.replace(old.encode(), new.encode()))  # activate scripts name their folder
            shutil.copymode(src, dest)


def _relocate(venv: Path, old: str, new: str) -> None:
    """Rewrite the venv's own path in its activate scripts after the folder holding it was renamed."""
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            data = script.read_bytes()
            if old.encode() in data:
                script.write_bytes(data.replace(old.encode(), new.encode()))


def fix_scripts(venv: Path, installed_with: str) -> None:
    """Point scripts installed for `installed_with` (uv's --prefix mode) at the venv's own interpreter."""
    bin_dir = venv / "bin"
    old = f"#!{installed_with}".encode()
    new = f"#!{venv_python(venv)}".encode()
    for script in bin_dir.iterdir() if bin_dir.is_dir() else ():
        if script.is_file() and not script.is_symlink():
            with open(script, "rb") as f:
                head = f.read(len(old))
            if head == old:
                data = script.read_bytes()
                script.write_bytes(new + data[len(old):])


# -- finding and making environments ------------------------------------------------------------------------------

def _env_root(name: str) -> Path:
    return envs_dir() / check_name(name)


def create_environment(name: str) -> Environment:
    """A new environment with an empty generation 0; refuses a name already in use."""
    root = _env_root(name)
    if (root / "env.json").exists():
        raise EnvironmentError_(f"environment {name!r} already exists at {root}; "
                                f"use it with `comfy env use {name}` or pick another name")
    envs_dir().mkdir(parents=True, exist_ok=True)
    _clear_leftovers()
    # Built under a hidden name and renamed: a killed `env create` leaves nothing that looks like an environment.
    staging = envs_dir() / f".new-{name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        env = Environment(name, staging)
        gen = staging / "generations" / "0"
        template = staging / "template"
        make_venv(template)  # made by uv, once; each generation's venv is a clone of it
        for pth in venv_site_packages(template).glob("*.pth"):
            pth.unlink()
        (template / ORIGIN).write_text(str(template), encoding="utf-8")
        make_venv(gen / "venv", template)
        (gen / "custom_nodes").mkdir(parents=True)
        (gen / "pylock.toml").write_text(empty_lock_text(), encoding="utf-8")
        # What `comfy sync` compares with to know the generation matches its lock.
        (gen / "lock.sha256").write_text(hashlib.sha256(empty_lock_text().encode()).hexdigest() + "\n",
                                         encoding="utf-8")
        write_generation(gen, action="create", packs={}, requested=[], parent=None)
        info = {"name": name, "created": time.time(), "python": sys.executable,
                "python_version": ".".join(map(str, sys.version_info[:3])),
                "hearth_site": hearth_site_dirs(), "base": base_packages()}
        (staging / "env.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        env.switch_to(0)
        os.symlink(Path("current") / "pylock.toml", staging / "pylock.toml")
        if root.exists():  # a folder without env.json: the remains of something unfinished
            shutil.rmtree(root)
        os.replace(staging, root)
        _relocate(root / "generations" / "0" / "venv", str(staging), str(root))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # The stand-ins resolution pins the base to, made now rather than by the first install (which makes them if
    # this was killed first). After the rename: their constraints name the files where they finally lie.
    with contextlib.suppress(OSError):
        base_constraints(root, info["base"])
    return Environment(name, root)


def _clear_leftovers() -> None:
    """Remove what a killed `env create` or `env remove` left (hidden folders of processes no longer running)."""
    for entry in envs_dir().glob(".*-*"):
        pid = entry.name.rsplit("-", 1)[-1]
        if entry.name.startswith((".new-", ".removed-")) and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


    return True


def empty_lock_text() -> str:
    return 'lock-version = "1.0"\ncreated-by = "hearth"\npackages = []\n'


def get_environment(name: str | None = None, *, create: bool = True) -> Environment:
    """The named environment (None: the current one). ``default`` is made on first use when `create` is true."""
    name = check_name(name or current_env_name())
    root = _env_root(name)
    if (root / "env.json").is_file():
        return Environment(name, root)
    if create and name == DEFAULT_ENV:
        try:
            return create_environment(name)
        except EnvironmentError_:
            if (root / "env.json").is_file():  # made by a concurrent command meanwhile
                return Environment(name, root)
            raise
    known = ", ".join(e.name for e in list_environments()) or "none yet"
    raise EnvironmentError_(f"no environment named {name!r} (have: {known}); create it with `comfy env create {name}`")


def list_environments() -> list[Environment]:
    folder = envs_dir()
    if not folder.is_dir():
        return []
    return [Environment(p.name, p) for p in sorted(folder.iterdir())
            if not p.name.startswith(".") and (p / "env.json").is_file()]


def use_environment(name: str) -> Environment:
    """Remember `name` as the current environment (``$COMFY_ENV`` still wins over it)."""
    env = get_environment(name, create=True)
    path = _chosen_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(name + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return env


def remove_environment(name: str) -> Path:
    env = get_environment(name, create=False)
    with env.locked():
        # Renamed first so that a half-removed folder is never mistaken for an environment.
        trash = envs_dir() / f".removed-{name}-{os.getpid()}"
        os.replace(env.root, trash)
    shutil.rmtree(trash, ignore_errors=True)
    if current_env_name() == name and _chosen_file().exists():
        _chosen_file().unlink()
    return env.root


def rollback(env: Environment, number: int | None = None) -> Generation:
    """Switch to generation `number`, else to the newest generation older than the current one."""
    with env.locked():
        now = env.generation
        if number is None:
            older = [g.number for g in env.generations() if g.number < now]
            if not older:
                raise EnvironmentError_(f"environment {env.name!r} is at generation {now}, its oldest; "
                                        "nothing to roll back to")
            number = older[-1]
        env.switch_to(number)
    return read_generation(env.generation_dir(number))


def prune(env: Environment, keep: int = 3) -> list[int]:
    """Delete all but the `keep` newest generations and the current one; returns the numbers removed."""
    if keep < 1:
        raise EnvironmentError_(f"--keep {keep}: keep at least 1 generation")
    with env.locked():
        now = env.generation
        numbers = [g.number for g in env.generations()]
        kept = set(numbers[-keep:]) | {now}
        gone = [n for n in numbers if n not in kept]
        for n in gone:
            # Renamed first: a half-deleted folder must never look like a generation.
            trash = env.root / "generations" / f".pruned-{n}"
            os.replace(env.generation_dir(n), trash)
            shutil.rmtree(trash, ignore_errors=True)
    return gone
