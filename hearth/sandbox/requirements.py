"""Dependency checks: requirements files and pyproject.toml that fetch from URLs, VCS or other indexes, or name
known-malicious and typosquatted packages (the lists live in ``sandbox/data/`` with their sources).

Requirements are read as text, never handed to pip: a requirements file is exactly where a malicious pack hides
``--extra-index-url`` or a wheel URL (the ComfyUI_LLMVISION pack pulled trojaned wheels that way).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hearth.sandbox.findings import Finding
from hearth.sandbox.rules import finding

DATA = Path(__file__).with_name("data")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PIN = re.compile(r"===?\s*([A-Za-z0-9.+!_-]+)")
_VCS = re.compile(r"\b(git|hg|svn|bzr)\+[a-z]+://|\bgit@", re.IGNORECASE)
_URL = re.compile(r"(^|[\s@])(https?|ftp|file)://|^(\.{0,2}/|[A-Za-z]:\\)\S+\.(whl|zip|tar\.gz|tgz)\b", re.IGNORECASE)
_INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host")
_TYPO_MIN_LENGTH = 5


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class KnownBad:
    kind: str  # "malicious" or "typosquat"
    source: str
    version: str | None = None


@cache
def known_bad() -> dict[str, list[KnownBad]]:
    entries: dict[str, list[KnownBad]] = {}
    for line in _data_lines("known_bad_packages.txt"):
        spec, kind, source = line.split(None, 2)
        name, _, version = spec.partition("==")
        entries.setdefault(normalize(name), []).append(KnownBad(kind, source, version or None))
    return entries


@cache
def popular() -> frozenset[str]:
    return frozenset(normalize(line) for line in _data_lines("popular_packages.txt"))


def _data_lines(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def one_typo_apart(a: str, b: str) -> bool:
    """True when ``a`` becomes ``b`` by one insertion, deletion, substitution or swap of neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def check_name(name: str, version: str | None, path: str, line: int, text: str) -> list[Finding]:
    """Findings for one required project name (and its pinned version, if any)."""
    key = normalize(name)
    for entry in known_bad().get(key, []):
        if entry.version is None or entry.version == version:
            rule = "deps.malicious" if entry.kind == "malicious" else "deps.typosquat"
            return [finding(rule, path, line, text, entry.source)]
    if key not in popular() and len(key) >= _TYPO_MIN_LENGTH:
        for target in sorted(popular()):
            if len(target) >= _TYPO_MIN_LENGTH and one_typo_apart(key, target):
                return [finding("deps.typosquat", path, line, text, f"did you mean {target}?")]
    return []


def check_requirement(text: str, path: str, line: int) -> list[Finding]:
    """Findings for one requirement, as written in requirements.txt or a pyproject dependency list."""
    spec = text.split(" #", 1)[0].strip()
    if not spec or spec.startswith("#"):
        return []
    option = spec.split("=", 1)[0].split()[0]
    if option in _INDEX_OPTIONS or spec.startswith(("--index-url", "--extra-index-url", "--find-links")):
        return [finding("deps.index", path, line, text)]
    if option in ("-r", "--requirement", "-c", "--constraint"):
        return []  # the file it names is scanned on its own when it is in the pack
    if option in ("-e", "--editable"):
        spec = spec.split(None, 1)[1] if " " in spec else ""
    if _VCS.search(spec):
        return [finding("deps.vcs", path, line, text)]
    if _URL.search(spec):
        return [finding("deps.url", path, line, text)]
    match = _NAME.match(spec)
    if not match:
        return []
    pin = _PIN.search(spec)
    return check_name(match.group(1), pin.group(1) if pin else None, path, line, text)


def scan_requirements_file(path: str, data: bytes) -> list[Finding]:
    findings = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        findings += check_requirement(line.strip(), path, number)
    return findings


def scan_pyproject(path: str, data: bytes) -> list[Finding]:
    """Dependencies declared in ``[project]`` (and its optional groups) of a pack's pyproject.toml."""
    text = data.decode("utf-8", "replace")
    try:
        project = tomllib.loads(text).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        return [finding("code.unparsable", path, 0, str(exc))]
    requirements = list(project.get("dependencies", []) or [])
    for group in (project.get("optional-dependencies", {}) or {}).values():
        requirements += list(group or [])
    lines = text.splitlines()
    findings = []
    for requirement in requirements:
        if not isinstance(requirement, str):
            continue
        number = next((i for i, line in enumerate(lines, 1) if requirement in line), 0)
        findings += check_requirement(requirement, path, number)
    return findings


def is_requirements_file(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".txt") and ("requirements" in lower or lower in ("constraints.txt", "reqs.txt"))
