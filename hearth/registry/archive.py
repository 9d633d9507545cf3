"""Pack archives: a reproducible zip of a pack's git-tracked files minus `.comfyignore`, with sha256 and size."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Fixed timestamp and modes: the same tree always gives the same bytes, hence the same sha256.
_EPOCH = (1980, 1, 1, 0, 0, 0)
ALWAYS_EXCLUDED = {".git", ".hg", ".svn", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"}


class ArchiveError(ValueError):
    """The pack folder cannot be archived; the message names the folder or file."""


@dataclass(frozen=True)
class Archive:
    path: Path
    sha256: str
    size: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern
    negate: bool
    dir_only: bool


def _translate(pattern: str) -> str:
    """gitignore glob → regex over a '/'-separated relative path."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def parse_ignore(lines: Iterable[str]) -> list[_Rule]:
    rules = []
    for raw in lines:
        line = raw.rstrip("\n").rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.strip("/") if dir_only else line
        anchored = line.startswith("/") or "/" in line
        line = line.lstrip("/")
        prefix = "^" if anchored else "^(?:.*/)?"
        rules.append(_Rule(re.compile(prefix + _translate(line) + "$"), negate, dir_only))
    return rules


def is_ignored(relpath: str, rules: list[_Rule]) -> bool:
    """A file is ignored if it or any parent folder matches; the last matching rule wins, as in git."""
    parts = relpath.split("/")
    ignored = False
    for depth in range(1, len(parts) + 1):
        candidate = "/".join(parts[:depth])
        is_dir = depth < len(parts)
        for rule in rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.match(candidate):
                ignored = not rule.negate
        if ignored and is_dir:
            return True  # git cannot re-include a file below an excluded folder
    return ignored


def _git_files(pack_dir: Path) -> list[str] | None:
    try:
        out = subprocess.run(["git", "-C", str(pack_dir), "ls-files", "-z", "--cached"],
                             capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def _walk_files(pack_dir: Path) -> list[str]:
    files = []
    for root, dirs, names in os.walk(pack_dir):
        dirs[:] = sorted(d for d in dirs if d not in ALWAYS_EXCLUDED)
        for name in names:
            files.append(Path(root, name).relative_to(pack_dir).as_posix())
    return files


def list_pack_files(pack_dir: str | Path, includes: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[str]:
    """The files that go into the archive: git-tracked (or all, outside git) minus .comfyignore, plus includes.

    `includes` ([tool.comfy] includes) adds folders that are built rather than tracked, e.g. a compiled web UI.
    `exclude` names files or folders (relative to the pack) that never go in: where archives are written.
    """
    pack_dir = Path(pack_dir)
    root = pack_dir.resolve()
    tracked = _git_files(pack_dir)
    files = set(tracked if tracked is not None else _walk_files(pack_dir))
    # Like comfy-cli, `includes` win over .comfyignore: they name build output that is ignored on purpose.
    forced: set[str] = set()
    for inc in includes:
        target = (pack_dir / inc.lstrip("/")).resolve()
        if not target.is_relative_to(root):
            raise ArchiveError(f"{pack_dir}: includes entry {inc!r} points outside the pack")
        if target.is_dir():
            forced.update(p.relative_to(root).as_posix() for p in target.rglob("*") if p.is_file())
        elif target.is_file():
            forced.add(target.relative_to(root).as_posix())
    ignore_file = pack_dir / ".comfyignore"
    rules = parse_ignore(ignore_file.read_text(encoding="utf-8").splitlines()) if ignore_file.is_file() else []
    left_out = [e.strip("/") for e in exclude if e.strip("/")]
    kept = []
    for rel in sorted(files | forced):
        # Bytecode is never shipped: the registry rejects archives holding it (code no review reads).
        if set(rel.split("/")) & ALWAYS_EXCLUDED or rel.endswith((".pyc", ".pyo")) \
                or (rel not in forced and is_ignored(rel, rules)):
            continue
        if any(rel == e or rel.startswith(e + "/") for e in left_out):
            continue
        full = pack_dir / rel
        if full.is_symlink():
            raise ArchiveError(f"{full}: symbolic links are not allowed in a pack archive")
        if full.is_file():  # a tracked file deleted from the work tree is simply absent
            kept.append(rel)
    if "pyproject.toml" not in kept:
        raise ArchiveError(f"{pack_dir}: pyproject.toml is missing, ignored or untracked")
    return kept


def file_digest(path: str | Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in blocks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def build_archive(pack_dir: str | Path, dest: str | Path, includes: Iterable[str] = (),
                  exclude: Iterable[str] = ()) -> Archive:
    """Write the pack's zip to `dest` (reproducibly) and return its path, sha256, size and file list.

    `dest` itself (and its partial file) never goes into the archive, even when it is inside the pack.
    """
    pack_dir = Path(pack_dir)
    if not pack_dir.is_dir():
        raise ArchiveError(f"{pack_dir}: not a folder")
    dest = Path(dest)
    exclude = list(exclude)
    root = pack_dir.resolve()
    target = dest.resolve()
    if target.is_relative_to(root):
        rel = target.relative_to(root).as_posix()
        exclude += [rel, rel + ".part"]
    files = list_pack_files(pack_dir, includes, exclude)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for rel in files:
            info = zipfile.ZipInfo(rel, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = os.access(pack_dir / rel, os.X_OK)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            zf.writestr(info, (pack_dir / rel).read_bytes())
    os.replace(tmp, dest)
    sha, size = file_digest(dest)
    return Archive(dest, sha, size, tuple(files))
