"""Archive safety: decide whether a pack archive (.zip, .tar, .tar.gz) or folder is safe to unpack, and unpack it.

Every check reads only the archive's directory (names, types, declared sizes); nothing is written until
:func:`check_archive` finds nothing, and :func:`safe_extract` then counts real bytes as it writes, because the
sizes an archive declares can lie. Any finding here makes the verdict ``reject``.

Scan exactly what ships. The registry builds a pack's wheel from every file of its stored archive, so every file
of the archive must be one the scan reads. Folders that hold code nobody reviews — version control (``.git``,
``.hg``, ``.svn``), ``__pycache__`` — and Python bytecode (``.pyc``, ``.pyo``) anywhere are therefore *rejected*
in an archive (``archive.not-shipped``), never silently skipped or stripped: stripping would make the stored
archive and the reviewed files differ, and a rejection tells the author to rebuild with ``comfy node publish``,
which leaves them out. A *folder* being scanned (``comfy node scan .`` in a checkout) is read as the publish
archive would be built from it: :data:`NOT_SHIPPED_DIRS` are skipped there, the same set
``hearth.registry.archive`` leaves out. Native extensions (``.so``, ``.pyd``, ``.dll``, ``.dylib``) are not
rejected — some packs need them — but are a high ``binary.compiled`` finding, so a human decides.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hearth.sandbox import rules
from hearth.sandbox.findings import Finding

MiB = 1024 * 1024
# Folders `comfy node publish` never puts in an archive (hearth.registry.archive.ALWAYS_EXCLUDED, kept equal by a
# test): skipped when a folder is scanned, refused when an archive holds them.
NOT_SHIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"})
SKIPPED_DIRS = NOT_SHIPPED_DIRS
_REFUSED_DIRS = NOT_SHIPPED_DIRS
_BYTECODE = (".pyc", ".pyo")
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1024 * 1024
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_MAX_NAME_BYTES, _MAX_PATH_BYTES = 255, 1024


@dataclass(frozen=True)
class Limits:
    """How big a pack may be. The defaults fit node packs (code, small assets), not model weights."""

    max_files: int = 10_000
    max_total_bytes: int = 512 * MiB
    max_file_bytes: int = 256 * MiB
    max_ratio: float = 100.0  # uncompressed / compressed, checked where at least ratio_floor bytes unpack
    ratio_floor: int = 1 * MiB


DEFAULT_LIMITS = Limits()


class ArchiveRejected(Exception):
    """The archive failed its checks; ``findings`` say why."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        first = findings[0]
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        super().__init__(f"{first.location}: {first.message}{more}")


class ArchiveUnreadable(Exception):
    """The path is neither a folder nor a zip or tar archive that can be read."""


@dataclass(frozen=True)
class Entry:
    """One member of an archive, in the terms the checks need."""

    name: str  # as decoded; non-UTF-8 bytes survive as surrogate escapes
    kind: str  # "file", "dir", "symlink", "hardlink", "device" or "other"
    size: int = 0
    compressed: int = 0
    utf8: bool = True


def finding(rule: str, name: str, detail: str = "") -> Finding:
    """An archive finding about member ``name`` (shown escaped: it may hold any bytes)."""
    return rules.finding(rule, printable(name), 0, printable(name), detail)


def printable(name: str) -> str:
    """A name as text that can be shown anywhere: undecodable bytes and control characters escaped."""
    raw = name.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


# -- reading the directory of each format -------------------------------------------------------------------


def archive_format(path: Path) -> str:
    """``"folder"``, ``"zip"`` or ``"tar"``; raises :class:`ArchiveUnreadable` otherwise."""
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise ArchiveUnreadable(f"{path}: no such file or folder")
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ArchiveUnreadable(f"{path}: not a readable archive ({exc})") from exc
    raise ArchiveUnreadable(f"{path}: not a folder, .zip or .tar(.gz) archive")


def _zip_entries(path: Path) -> Iterator[Entry | Finding]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        for info in infos:
            utf8 = True
            name = info.filename
            if not info.flag_bits & 0x800:  # the name was stored without the UTF-8 flag: check its real bytes
                raw = info.orig_filename.encode("cp437")
                try:
                    name = raw.decode("utf-8")
                except UnicodeDecodeError:
                    utf8, name = False, raw.decode("utf-8", "surrogateescape")
            if info.flag_bits & 0x1:  # encrypted: its contents cannot be scanned
                yield finding("archive.unreadable", name, detail="encrypted member")
            elif info.compress_type not in _ZIP_METHODS:
                yield finding("archive.unreadable", name, detail=f"unsupported compression {info.compress_type}")
            mode = info.external_attr >> 16 if info.create_system == 3 else 0
            if stat.S_ISLNK(mode):
                kind = "symlink"
            elif stat.S_IFMT(mode) in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                kind = "device"
            elif info.is_dir():
                kind = "dir"
            else:
                kind = "file"
            yield Entry(name, kind, info.file_size, info.compress_size, utf8)
        yield from _zip_overlaps(infos)


def _zip_overlaps(infos: list[zipfile.ZipInfo]) -> Iterator[Finding]:
    # Overlapping members let a small zip expand many times over (the "non-recursive zip bomb").
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for a, b in zip(ordered, ordered[1:], strict=False):
        end_of_a = a.header_offset + 30 + len(a.orig_filename.encode("utf-8", "surrogateescape")) + a.compress_size
        if end_of_a > b.header_offset:
            yield finding("archive.overlap", b.filename, detail=f"its data overlaps {printable(a.filename)!r}")
            return


def _tar_entries(path: Path, limits: Limits) -> Iterator[Entry | Finding]:
    with tarfile.open(path, "r:*", encoding="utf-8", errors="surrogateescape") as tf:
        count = 0
        while True:
            # Each step may decompress a member's data; stop before a gzip bomb fills memory or time.
            if tf.offset > limits.max_total_bytes + limits.max_files * 1024:
                yield finding("archive.too-large", path.name, detail=f"over {limits.max_total_bytes // MiB} MiB")
                return
            member = tf.next()
            if member is None:
                break
            if member.offset_data + member.size > limits.max_total_bytes:  # before the next step reads past it
                yield finding("archive.too-large", member.name, detail=f"over {limits.max_total_bytes // MiB} MiB")
                return
            count += 1
            if count > limits.max_files:
                yield finding("archive.too-many-files", path.name, detail=f"over {limits.max_files}")
                return
            if member.issym():
                kind = "symlink"
            elif member.islnk():
                kind = "hardlink"
            elif member.ischr() or member.isblk() or member.isfifo():
                kind = "device"
            elif member.isdir():
                kind = "dir"
            elif member.isreg():
                kind = "file"
            else:
                kind = "other"
            utf8 = not _has_surrogates(member.name)
            yield Entry(member.name, kind, member.size if kind == "file" else 0, 0, utf8)
        compressed = path.stat().st_size
        yield Entry("", "stream", tf.offset, compressed)


def _folder_entries(root: Path) -> Iterator[Entry]:
    stack = [root]
    while stack:  # iterative: deep trees must not hit the recursion limit
        folder = stack.pop()
        with os.scandir(folder) as it:
            for item in sorted(it, key=lambda e: e.name):
                rel = os.path.relpath(item.path, root).replace(os.sep, "/")
                st = item.stat(follow_symlinks=False)
                utf8 = not _has_surrogates(item.name)
                if stat.S_ISLNK(st.st_mode):
                    yield Entry(rel, "symlink", utf8=utf8)
                elif stat.S_ISDIR(st.st_mode):
                    if item.name in SKIPPED_DIRS:
                        continue
                    yield Entry(rel + "/", "dir", utf8=utf8)
                    stack.append(Path(item.path))
                elif stat.S_ISREG(st.st_mode):
                    kind = "hardlink" if st.st_nlink > 1 else "file"
                    yield Entry(rel, kind, st.st_size, st.st_size, utf8)
                else:
                    yield Entry(rel, "device", utf8=utf8)


def _has_surrogates(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# -- the checks -------------------------------------------------------------------------------------------------


def check_archive(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> list[Finding]:
    """Check a pack archive or folder without unpacking it; every finding means ``reject``."""
    path = Path(path)
    kind = archive_format(path)
    try:
        if kind == "zip":
            items = list(_zip_entries(path))
        elif kind == "tar":
            items = list(_tar_entries(path, limits))
        else:
            items = list(_folder_entries(path))
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError, UnicodeDecodeError) as exc:
        return [finding("archive.unreadable", path.name, detail=str(exc))]
    findings = [item for item in items if isinstance(item, Finding)]
    entries = [item for item in items if isinstance(item, Entry)]
    findings += _check_entries(entries, limits, whole_archive=path.stat().st_size if kind == "zip" else None)
    return findings


def _check_entries(entries: list[Entry], limits: Limits, whole_archive: int | None) -> list[Finding]:
    findings: list[Finding] = []
    stream = [e for e in entries if e.kind == "stream"]
    members = [e for e in entries if e.kind != "stream"]
    if len(members) > limits.max_files:
        findings.append(finding("archive.too-many-files", "", detail=f"over {limits.max_files}"))
    seen: dict[str, str] = {}
    folded: dict[str, str] = {}
    total = 0
    for entry in members:
        name = entry.name
        findings += _check_name(entry)
        if _not_shipped(name):
            findings.append(finding("archive.not-shipped", name))
        if entry.kind == "symlink":
            findings.append(finding("archive.link", name, detail="symbolic link"))
        elif entry.kind == "hardlink":
            findings.append(finding("archive.link", name, detail="hard link"))
        elif entry.kind in ("device", "other"):
            findings.append(finding("archive.device", name))
        key = name.rstrip("/")
        if key in seen:
            findings.append(finding("archive.duplicate-name", name))
        else:
            fold = unicodedata.normalize("NFC", key).casefold()
            if fold in folded:
                findings.append(finding("archive.case-collision", name, detail=f"with {printable(folded[fold])!r}"))
            folded.setdefault(fold, key)
        seen.setdefault(key, name)
        total += entry.size
        if entry.size > limits.max_file_bytes:
            limit = limits.max_file_bytes // MiB
            findings.append(finding("archive.too-large", name, detail=f"{entry.size // MiB} MiB, limit {limit} MiB a file"))
        if _too_compressed(entry.size, entry.compressed, limits):
            findings.append(finding("archive.bomb", name, detail=f"{entry.size // entry.compressed}x, limit {limits.max_ratio:g}x"))
    if total > limits.max_total_bytes:
        findings.append(finding("archive.too-large", "", detail=f"{total // MiB} MiB, limit {limits.max_total_bytes // MiB} MiB"))
    packed = stream[0].compressed if stream else whole_archive
    unpacked = stream[0].size if stream else total
    if _too_compressed(unpacked, packed, limits):
        findings.append(finding("archive.bomb", "", detail=f"{unpacked // packed}x, limit {limits.max_ratio:g}x"))
    return findings


def _not_shipped(name: str) -> bool:
    parts = [p for p in re.split(r"[/\\]", name) if p]
    if any(p in _REFUSED_DIRS for p in parts[:-1]) or (parts and name.endswith("/") and parts[-1] in _REFUSED_DIRS):
        return True
    return bool(parts) and parts[-1].lower().endswith(_BYTECODE)


def _too_compressed(unpacked: int, packed: int | None, limits: Limits) -> bool:
    # Small files compress well legitimately; the ratio matters only once there is something to fill a disk.
    return bool(packed) and unpacked >= limits.ratio_floor and unpacked / packed > limits.max_ratio


def _check_name(entry: Entry) -> list[Finding]:
    name = entry.name
    if not entry.utf8:
        return [finding("archive.bad-name", name, detail="not UTF-8")]
    if not name or "\x00" in name or any(unicodedata.category(c) == "Cc" for c in name):
        return [finding("archive.bad-name", name, detail="empty or control characters")]
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return [finding("archive.traversal", name, detail="absolute path")]
    if ".." in parts:
        return [finding("archive.traversal", name, detail="'..' in the path")]
    if len(name.encode("utf-8")) > _MAX_PATH_BYTES or any(len(p.encode("utf-8")) > _MAX_NAME_BYTES for p in parts):
        return [finding("archive.bad-name", name, detail="too long to unpack on common file systems")]
    return []


# -- extraction -------------------------------------------------------------------------------------------------


def safe_extract(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS
) -> Path:
    """Unpack an archive (or copy a folder) into ``dest`` after :func:`check_archive` passes.

    Only regular files and folders are written, with plain permissions (no set-uid, no executable bits), and the
    real byte count is enforced as data is written. Raises :class:`ArchiveRejected` with the findings otherwise;
    ``dest`` must not exist or be empty, and is removed again if extraction fails halfway.
    """
    archive, dest = Path(archive), Path(dest)
    findings = check_archive(archive, limits)
    if findings:
        raise ArchiveRejected(findings)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest}: extraction target is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(limits)
    try:
        kind = archive_format(archive)
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _write(dest, info.filename, info.is_dir(), lambda i=info: zf.open(i), budget)
        elif kind == "tar":
            with tarfile.open(archive, "r:*", encoding="utf-8", errors="surrogateescape") as tf:
                for member in tf:
                    _write(dest, member.name, member.isdir(), lambda m=member: tf.extractfile(m), budget)
        else:
            for entry in _folder_entries(archive):
                _write(dest, entry.name, entry.kind == "dir", lambda e=entry: open(archive / e.name, "rb"), budget)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0

    def spend(self, name: str, written: int, chunk: int) -> None:
        self.total += chunk
        if written > self.limits.max_file_bytes or self.total > self.limits.max_total_bytes:
            raise ArchiveRejected([finding("archive.bomb", name, detail="more bytes than it declares, past the limit")])


def _write(dest: Path, name: str, is_dir: bool, opener, budget: _Budget) -> None:  # noqa: ANN001
    target = (dest / name).resolve()
    if not target.is_relative_to(dest.resolve()):  # check_archive already refused this; never rely on one check
        raise ArchiveRejected([finding("archive.traversal", name, detail="leads outside the target folder")])
    if is_dir:
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with opener() as src, open(target, "xb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            budget.spend(name, written, len(chunk))
            out.write(chunk)
    target.chmod(0o644)


def pack_root(folder: str | os.PathLike[str]) -> Path:
    """The pack inside an unpacked archive: archives often wrap the pack in one top-level folder."""
    folder = Path(folder)
    markers = ("pyproject.toml", "__init__.py")
    while not any((folder / m).exists() for m in markers):
        children = [c for c in folder.iterdir() if c.name not in SKIPPED_DIRS]
        if len(children) != 1 or not children[0].is_dir():
            break
        folder = children[0]
    return folder
