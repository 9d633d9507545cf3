"""The review of one version: files changed since the pack's last approved version, with findings at their lines."""

from __future__ import annotations

import difflib
import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from hearth.registry.manifest import semver_key
from hearth.registry_server.admin.services import SEVERITY_RANK
from hearth.registry_server.packs.models import ACTIVE, Finding, Pack, Version
from hearth.registry_server.storage.services import download_to_temp

# A reviewer reads diffs, not megabytes: bigger text files are summarised by hash and size instead.
MAX_TEXT_BYTES = 512 * 1024
MAX_FILES = 2000
CONTEXT = 3


@dataclass
class Line:
    kind: str  # "context" | "add" | "del" | "gap"
    old: int | None
    new: int | None
    text: str
    findings: list = field(default_factory=list)


@dataclass
class FileChange:
    path: str
    change: str  # "added" | "removed" | "modified" | "unchanged"
    lines: list[Line] = field(default_factory=list)
    note: str = ""  # for binary or oversized files
    findings: list = field(default_factory=list)  # findings not at a line shown in the diff
    worst: int = 0


@dataclass
class Review:
    pack: Pack
    version: Version
    base: Version | None
    files: list[FileChange]
    findings: list  # every finding, most severe first
    truncated: bool = False


def last_approved(session: Session, pack: Pack, version: Version) -> Version | None:
    """The newest version of the pack that a reviewer or the policy let go active (other than this one)."""
    rows = session.exec(select(Version).where(Version.pack_id == pack.id, Version.status == ACTIVE,
                                              Version.id != version.id)).all()
    older = [v for v in rows if semver_key(v.version) < semver_key(version.version)] or list(rows)
    return max(older, key=lambda v: semver_key(v.version), default=None)


def _read(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    return {i.filename: i for i in zf.infolist() if not i.is_dir()}


def _text(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[list[str] | None, bytes]:
    if info.file_size > MAX_TEXT_BYTES:
        return None, b""
    data = zf.read(info)
    try:
        return data.decode("utf-8").splitlines(), data
    except UnicodeDecodeError:
        return None, data


def _diff(old: list[str], new: list[str]) -> list[Line]:
    out: list[Line] = []
    for group in difflib.SequenceMatcher(None, old, new, autojunk=False).get_grouped_opcodes(CONTEXT):
        if out:
            out.append(Line("gap", None, None, "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [Line("context", i1 + k + 1, j1 + k + 1, new[j1 + k]) for k in range(i2 - i1)]
                continue
            if tag in ("replace", "delete"):
                out += [Line("del", i1 + k + 1, None, old[i1 + k]) for k in range(i2 - i1)]
            if tag in ("replace", "insert"):
                out += [Line("add", None, j1 + k + 1, new[j1 + k]) for k in range(j2 - j1)]
    return out


def _describe(info: zipfile.ZipInfo | None, data: bytes) -> str:
    if info is None:
        return "absent"
    digest = hashlib.sha256(data).hexdigest()[:16] if data else "not read"
    return f"{info.file_size} bytes, sha256 {digest}"


def _place(change: FileChange, findings: list[Finding]) -> None:
    """Attach each finding to the diff line it names, or to the file when that line is not shown."""
    by_line = {ln.new: ln for ln in change.lines if ln.new is not None}
    for f in findings:
        target = by_line.get(f.line) if f.line else None
        (target.findings if target is not None else change.findings).append(f)
        change.worst = max(change.worst, SEVERITY_RANK.get(str(f.severity).lower(), 0))


def build_review(session: Session, server, pack: Pack, version: Version) -> Review:  # noqa: ANN001 - ServerContext
    findings = list(session.exec(select(Finding).where(Finding.version_id == version.id)).all())
    findings.sort(key=lambda f: (-SEVERITY_RANK.get(str(f.severity).lower(), 0), f.path, f.line or 0))
    base = last_approved(session, pack, version)
    by_path: dict[str, list[Finding]] = {}
    for f in findings:
        by_path.setdefault(f.path or "", []).append(f)
    work = Path(tempfile.mkdtemp(prefix="review-", dir=server.settings.tmp_dir))
    files: list[FileChange] = []
    truncated = False
    try:
        new_zip = zipfile.ZipFile(download_to_temp(server.storage, version.blob_key, work, ".zip"))
        old_zf = zipfile.ZipFile(download_to_temp(server.storage, base.blob_key, work, ".base.zip")
                                 if base is not None else _empty_zip(work))
        with new_zip, old_zf:
            new_files, old_files = _read(new_zip), _read(old_zf)
            paths = sorted(set(new_files) | set(old_files))
            if len(paths) > MAX_FILES:
                paths, truncated = paths[:MAX_FILES], True
            for path in paths:
                n_info, o_info = new_files.get(path), old_files.get(path)
                change = "added" if o_info is None else "removed" if n_info is None else "modified"
                new_lines, new_data = _text(new_zip, n_info) if n_info else ([], b"")
                old_lines, old_data = _text(old_zf, o_info) if o_info else ([], b"")
                if n_info and o_info and new_data == old_data and n_info.CRC == o_info.CRC \
                        and n_info.file_size == o_info.file_size:
                    change = "unchanged"
                fc = FileChange(path, change)
                if change != "unchanged":
                    if new_lines is None or old_lines is None:
                        fc.note = f"binary or over {MAX_TEXT_BYTES // 1024} KiB: was {_describe(o_info, old_data)}, " \
                                  f"now {_describe(n_info, new_data)}"
                    else:
                        fc.lines = _diff(old_lines, new_lines)
                _place(fc, by_path.pop(path, []))
                if change != "unchanged" or fc.findings:
                    files.append(fc)
        for path, rest in by_path.items():  # findings about the archive itself, or files not in it
            fc = FileChange(path or "(archive)", "unchanged")
            _place(fc, rest)
            files.append(fc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Files with the most severe findings first, so the reviewer starts where the risk is.
    files.sort(key=lambda fc: (-fc.worst, fc.path))
    return Review(pack, version, base, files, findings, truncated)


def _empty_zip(work: Path) -> Path:
    path = work / "empty.zip"
    with zipfile.ZipFile(path, "w"):
        pass
    return path
