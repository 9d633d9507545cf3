"""The static scan of a whole pack folder: walks every file once and hands each to the checks that apply.

Nothing here imports or runs pack code; Python files are parsed with :mod:`ast` only. The folder must already
have passed :func:`hearth.sandbox.archive.check_archive` (no links, no devices), so walking it is safe.

Every file that ships is read (``ScanResult.paths`` lists them; the wheel the registry builds holds no other):
Python sources whole (one over :data:`MAX_SOURCE_BYTES`, or one that does not parse, is a high finding, since
what it does is unknown), other files by their first bytes, text files whole. Where the pack loads modules by
path, text files that are not ``.py`` but hold Python code are scanned as Python too (``code.hidden-module``).

The scan is a triage aid for reviewers: it finds common shapes of hiding and harm, and a determined author can
write code it does not recognise. A ``pass`` means "nothing recognised", never "safe".
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from hearth.sandbox.archive import NOT_SHIPPED_DIRS
from hearth.sandbox.files import HEAD_BYTES, TEXT_SUFFIXES, check_file, check_install_script, check_text
from hearth.sandbox.findings import Finding
from hearth.sandbox.pycode import scan_python
from hearth.sandbox.requirements import is_requirements_file, scan_pyproject, scan_requirements_file
from hearth.sandbox.rules import finding

MAX_SOURCE_BYTES = 16 * 1024 * 1024  # a Python file larger than this is not parsed (and is itself suspicious)
MAX_TEXT_BYTES = 4 * 1024 * 1024  # web bundles larger than this are read for nothing else either
MAX_FINDINGS_PER_RULE_AND_FILE = 20  # enough to show a pattern without burying the rest


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    python_files: int = 0
    paths: list[str] = field(default_factory=list)  # every file read, as POSIX paths relative to the pack


def _pack_files(root: Path) -> list[str]:
    """Every regular file under ``root`` as a POSIX relative path, in a stable order."""
    found = []
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in NOT_SHIPPED_DIRS:  # what `comfy node publish` leaves out
                        stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    found.append(Path(entry.path).relative_to(root).as_posix())
    return sorted(found)


def scan_folder(root: str | os.PathLike[str]) -> ScanResult:
    """Run every static check over the pack in ``root``."""
    root = Path(root)
    result = ScanResult()
    names = _pack_files(root)
    name_set = set(names)
    result.paths = names
    texts: list[str] = []  # non-Python text files small enough to check for hidden modules
    for name in names:
        path = root / name
        size = path.stat().st_size
        result.files += 1
        result.bytes += size
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
            findings = check_file(name, head, name_set)
            lower = name.lower()
            if lower.endswith((".py", ".pyw")):
                result.python_files += 1
                if size > MAX_SOURCE_BYTES:
                    findings.append(finding("code.unparsable", name, 0, "", f"{size // 1024 // 1024} MiB is too large to parse"))
                else:
                    source = head + fh.read()
                    findings += scan_python(name, source)
                    findings += check_install_script(name, source)
            elif is_requirements_file(lower.rsplit("/", 1)[-1]):
                findings += scan_requirements_file(name, head + fh.read(1024 * 1024))
            elif name == "pyproject.toml":
                findings += scan_pyproject(name, head + fh.read(1024 * 1024))
            if PurePosixPath(lower).suffix in TEXT_SUFFIXES and size <= MAX_TEXT_BYTES:
                findings += check_text(name, head + fh.read())
            if not lower.endswith((".py", ".pyw", ".pyi")) and size <= MAX_TEXT_BYTES and b"\x00" not in head:
                texts.append(name)
        result.findings += _capped(findings)
    if any(f.rule in ("code.loader", "code.loader-data") for f in result.findings):
        for name in texts:
            result.findings += _capped(_hidden_module(name, (root / name).read_bytes()))
    return result


_CODE_NODES = (ast.Import, ast.ImportFrom, ast.Call, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _hidden_module(name: str, data: bytes) -> list[Finding]:
    """A data file that parses as Python and does something (imports, calls, defines) is code in disguise."""
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    first = next((n for n in ast.walk(tree) if isinstance(n, _CODE_NODES)), None)
    if first is None:
        return []
    line = data.decode("utf-8", "replace").splitlines()[first.lineno - 1] if first.lineno else ""
    return [finding("code.hidden-module", name, first.lineno, line), *scan_python(name, data)]


def _capped(findings: list[Finding]) -> list[Finding]:
    counts: dict[str, int] = {}
    kept = []
    for f in findings:
        counts[f.rule] = counts.get(f.rule, 0) + 1
        if counts[f.rule] <= MAX_FINDINGS_PER_RULE_AND_FILE:
            kept.append(f)
    return kept
