"""Verification of untrusted node packs: archive safety, static scan and isolated import.

The registry server calls :func:`verify` on every upload; authors run the same check with ``comfy node scan``::

    from hearth.sandbox import verify

    report = verify("my-pack-1.0.0.tar.gz")
    report.verdict        # "pass", "flag" or "reject"
    report.findings       # [Finding(rule, severity, path, line, snippet, message), ...]
    report.nodes          # [{"name", "category", "inputs", "outputs", "kind"}, ...]
    report.to_dict()      # JSON-able

Three stages, cheapest first: archive checks (any finding rejects, and nothing further runs), the static scan
(reads every file that ships, never runs them; a triage aid for reviewers, so ``pass`` means nothing was
recognised, not that the pack is safe: docs/scan.md), and the isolated import (the only stage that runs pack code, in a separate
process with no network, see :mod:`hearth.sandbox.isolate`). This package uses the standard library alone.

Suppressions come from registry admins only, never from a pack's author, and the registry records each one
(who, why, which finding) in its audit log. A suppression names a rule and a place; it hides matching findings
and the verdict is recomputed. Archive findings cannot be suppressed::

    report.suppress("process.spawn", "nodes.py", 12, by="admin@example", reason="runs ffmpeg, reviewed")
    # re-verifying a new upload with the decisions already on record:
    verify(path, suppressions=[Suppression("process.spawn", "nodes.py", None, by=..., reason=...)])
"""

from __future__ import annotations

import os
import re
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path

from hearth.sandbox.archive import (
    DEFAULT_LIMITS,
    ArchiveRejected,
    ArchiveUnreadable,
    Limits,
    archive_format,
    check_archive,
    finding,
    pack_root,
    safe_extract,
)
from hearth.sandbox.collisions import collision_findings
from hearth.sandbox.findings import Finding, Report, Suppression
from hearth.sandbox.isolate import ImportLimits, import_pack
from hearth.sandbox.static import scan_folder

__all__ = [
    "ArchiveRejected", "ArchiveUnreadable", "Finding", "ImportLimits", "Limits", "Report", "Suppression",
    "check_archive", "safe_extract", "verify",
]


def verify(
    path: str | os.PathLike[str],
    *,
    isolate_import: bool = True,
    suppressions: Iterable[Suppression] = (),
    limits: Limits = DEFAULT_LIMITS,
    import_limits: ImportLimits = ImportLimits(),
    tmp_dir: str | os.PathLike[str] | None = None,
) -> Report:
    """Check a pack (a folder, .zip, .tar or .tar.gz) and return its :class:`Report`.

    :param isolate_import: import the pack in the sandbox to list its nodes; without it, nodes stay unknown.
    :param suppressions: admin decisions to apply (the registry records each in its audit log).
    :param tmp_dir: where unpacking and the isolated import work (the system's temporary folder by default).
    :raises ArchiveUnreadable: the path does not exist or is not a folder or archive of a known kind.
    """
    path = Path(path)
    kind = archive_format(path)
    findings = check_archive(path, limits)
    if findings:
        report = Report(findings=findings, stats={"format": kind})
        report.apply(list(suppressions))
        return report
    with tempfile.TemporaryDirectory(prefix="hearth-verify-", dir=tmp_dir) as tmp:
        if kind == "folder":
            root = path
        else:
            try:
                root = pack_root(safe_extract(path, Path(tmp) / "unpacked", limits))
            except ArchiveRejected as exc:
                return Report(findings=exc.findings, stats={"format": kind})
            except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, RuntimeError) as exc:
                # Damage the directory did not show (a corrupt member, a write the system refuses).
                unreadable = finding("archive.unreadable", path.name, detail=f"unpacking failed: {exc}")
                return Report(findings=[unreadable], stats={"format": kind})
            root = _named(root, Path(tmp), _pack_name(root, path))
        static = scan_folder(root)
        findings = static.findings
        nodes, import_ok, isolation = [], False, {"skipped": True}
        if isolate_import:
            imported = import_pack(root, import_limits, tmp_dir)
            findings = findings + imported.findings
            nodes, import_ok, isolation = imported.nodes, imported.import_ok, imported.isolation
            findings = findings + collision_findings(nodes, _pack_name(root, path))
    stats = {"format": kind, "files": static.files, "bytes": static.bytes, "python_files": static.python_files}
    report = Report(findings=findings, nodes=nodes, import_ok=import_ok, isolation=isolation, stats=stats)
    report.apply(list(suppressions))
    return report


def _pack_name(root: Path, archive: Path) -> str:
    """The import name of an unpacked pack: its project name, else the archive's name without version."""
    try:
        name = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        name = re.sub(r"(\.tar\.gz|\.tgz|\.tar|\.zip)$", "", archive.name)
        name = re.sub(r"[-_]v?\d+(\.\d+)*.*$", "", name)
    return re.sub(r"\W", "_", str(name)) or "pack"


def _named(root: Path, tmp: Path, name: str) -> Path:
    # ComfyUI packs import under their folder's name; give the unpacked folder the pack's own name.
    if root.name == name:
        return root
    target = tmp / "named" / name
    target.parent.mkdir()
    return root.rename(target)
