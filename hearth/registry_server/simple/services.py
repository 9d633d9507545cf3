"""Wheels from pack archives: reproducible py3-none-any wheels, laid out by the pack's format."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import re
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from hearth.registry.manifest import (
    ALLOWED_ENTRY_POINT_GROUPS,
    ENTRY_POINT_NAME_RE,
    ENTRY_POINT_VALUE_RE,
    normalize_name,
    semver_to_pep440,
)

_EPOCH = (1980, 1, 1, 0, 0, 0)
# ComfyUI-format packs are found through this entry-point group when installed as wheels: the value is the
# importable package that exports NODE_CLASS_MAPPINGS.
CUSTOM_NODES_GROUP = "comfyui.custom_nodes"


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    filename: str
    sha256: str
    size: int
    metadata: bytes
    metadata_sha256: str


def import_name(pack_id: str) -> str:
    """A Python package name for a pack id ("ComfyUI-Foo.bar" → "comfyui_foo_bar")."""
    name = re.sub(r"\W+", "_", pack_id).strip("_").lower() or "pack"
    return f"_{name}" if name[0].isdigit() else name


def wheel_filename(pack_id: str, version: str) -> str:
    dist = normalize_name(pack_id).replace("-", "_")
    return f"{dist}-{semver_to_pep440(version)}-py3-none-any.whl"


def core_metadata(pack_id: str, version: str, manifest: dict, dependencies: list[str]) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {pack_id}", f"Version: {semver_to_pep440(version)}"]
    if manifest.get("description"):
        lines.append("Summary: " + " ".join(manifest["description"].split()))
    if manifest.get("license"):
        lines.append("License: " + " ".join(str(manifest["license"]).split())[:200])
    if manifest.get("requires_python"):
        lines.append(f"Requires-Python: {manifest['requires_python']}")
    if manifest.get("repository"):
        lines.append(f"Project-URL: Repository, {manifest['repository']}")
    lines += [f"Requires-Dist: {d}" for d in dependencies]
    return ("\n".join(lines) + "\n").encode()


def _req_name(text: str) -> str:
    try:
        return normalize_name(Requirement(text).name)
    except InvalidRequirement:
        return text


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def pack_layout(names: list[str], pyproject: bytes | None) -> tuple[str, list[str]]:
    """("comfyui", []) for a ComfyUI-format pack (a root ``__init__.py``: the pack folder is the package), or
    ("project", top-level names) for a Python project whose own packages and modules go at the wheel's root.

    A project's top-level names are its folders holding ``__init__.py`` (``src/`` layout too) and its root
    modules, narrowed by setuptools' ``packages`` list or ``packages.find.include`` when it has one; packaging
    clutter (pyproject, README, tests) stays out.
    """
    if "__init__.py" in names:
        return "comfyui", []
    include: list[str] = []
    if pyproject is not None:
        try:
            data = tomllib.loads(pyproject.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}
        tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
        setuptools = tool.get("setuptools") if isinstance(tool.get("setuptools"), dict) else {}
        packages = setuptools.get("packages", {})
        if isinstance(packages, list):  # packages = ["a", "a.sub"]: the top-level names listed
            include = sorted({str(p).split(".")[0] for p in packages})
        elif isinstance(packages, dict) and isinstance(packages.get("find"), dict):
            include = [str(p) for p in packages["find"].get("include", [])]
    tops = set()
    for name in names:
        parts = name.split("/")
        if parts[0] == "src" and len(parts) > 2:
            parts = parts[1:]
        if len(parts) == 2 and parts[1] == "__init__.py":
            tops.add(parts[0])
        elif len(parts) == 1 and name.endswith(".py") and name not in _NOT_MODULES:
            tops.add(name)
    tops = {t for t in tops if t.removesuffix(".py") not in _NOT_PACKAGES}
    if include:
        tops = {t for t in tops if any(fnmatch.fnmatch(t.removesuffix(".py"), p) for p in include)}
    return ("project", sorted(tops)) if tops else ("comfyui", [])


_NOT_MODULES = {"setup.py", "conftest.py", "noxfile.py", "install.py"}
_NOT_PACKAGES = {"tests", "test", "docs", "examples", "build", "dist"}


def requirements_txt(text: str) -> list[str]:
    """The plain requirement lines of a ComfyUI pack's requirements.txt (options, URLs and bad lines skipped)."""
    out = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")) or "://" in line or line.startswith("git+"):
            continue
        try:
            out.append(str(Requirement(line)))
        except InvalidRequirement:
            continue
    return out


def build_wheel(archive: Path, pack_id: str, version: str, manifest: dict, dependencies: list[str],
                out_dir: Path) -> BuiltWheel:
    """The wheel for one pack version.

    A ComfyUI-format pack (root ``__init__.py`` exporting NODE_CLASS_MAPPINGS) goes under one package named by
    import_name(), with a `comfyui.custom_nodes` entry point naming it and its requirements.txt folded into
    Requires-Dist. A Hearth-format pack that is a Python project keeps its own top-level packages at the wheel's
    root, so its own entry points (``hearth = "hearth_sd.plugin"``) import as written.
    """
    filename = wheel_filename(pack_id, version)
    dist_info = filename.split("-py3-")[0] + ".dist-info"
    package = import_name(pack_id)
    with zipfile.ZipFile(archive) as src:
        members = sorted((i for i in src.infolist() if not i.is_dir()), key=lambda i: i.filename)
        contents = {i.filename: src.read(i) for i in members}
    layout, tops = pack_layout(list(contents), contents.get("pyproject.toml"))
    dependencies = list(dependencies)
    entry_points: dict[str, dict[str, str]] = {}
    files: list[tuple[str, bytes]] = []
    if layout == "comfyui":
        entry_points[CUSTOM_NODES_GROUP] = {pack_id: package}
        have = {_req_name(d) for d in dependencies}
        for req in requirements_txt(contents.get("requirements.txt", b"").decode("utf-8", "replace")):
            if _req_name(req) not in have:
                have.add(_req_name(req))
                dependencies.append(req)
        files = [(f"{package}/{name}", data) for name, data in contents.items()]
        if "__init__.py" not in contents:
            files.append((f"{package}/__init__.py", b""))
    else:
        for name, data in contents.items():
            rel = name[4:] if name.startswith("src/") else name
            top = rel.split("/", 1)[0]
            if top in tops and (top.endswith(".py") or "/" in rel):
                files.append((rel, data))
            elif "/" not in name and name.upper().startswith(("LICENSE", "COPYING", "NOTICE")):
                files.append((f"{dist_info}/licenses/{name}", data))
        files.sort()
    metadata = core_metadata(pack_id, version, manifest, dependencies)
    for group, items in (manifest.get("entry_points") or {}).items():
        # The manifest rules refuse anything else on upload; a version stored before them is held to them here, so
        # no entry_points.txt line can open a new section ("x\n[console_scripts]\ny") or claim another pack.
        if group not in ALLOWED_ENTRY_POINT_GROUPS or not isinstance(items, dict):
            continue
        for key, value in items.items():
            if not (ENTRY_POINT_NAME_RE.match(str(key)) and ENTRY_POINT_VALUE_RE.match(str(value))):
                continue
            if group == CUSTOM_NODES_GROUP and normalize_name(str(key)) != normalize_name(pack_id):
                continue
            entry_points.setdefault(group, {})[str(key)] = str(value)
    ep_text = "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(items.items())) + "\n"
                      for g, items in sorted(entry_points.items()))
    files += [
        (f"{dist_info}/METADATA", metadata),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: hearth-registry\nRoot-Is-Purelib: true\n"
                               b"Tag: py3-none-any\n"),
        (f"{dist_info}/entry_points.txt", ep_text.encode()),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files)
    record += f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / filename
    path.write_bytes(buf.getvalue())
    return BuiltWheel(path, filename, hashlib.sha256(buf.getvalue()).hexdigest(), len(buf.getvalue()),
                      metadata, hashlib.sha256(metadata).hexdigest())
