"""Wheels from pack archives: a reproducible py3-none-any wheel whose package is the pack's folder."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from registry.manifest import normalize_name, semver_to_pep440

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


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(archive: Path, pack_id: str, version: str, manifest: dict, dependencies: list[str],
                out_dir: Path) -> BuiltWheel:
    """The wheel for one pack version. The archive's files go under one package named by import_name();
    the pack's own entry points are kept and a `comfyui.custom_nodes` entry point names the package."""
    filename = wheel_filename(pack_id, version)
    dist_info = filename.split("-py3-")[0] + ".dist-info"
    package = import_name(pack_id)
    metadata = core_metadata(pack_id, version, manifest, dependencies)
    entry_points = {CUSTOM_NODES_GROUP: {pack_id: package}}
    for group, items in (manifest.get("entry_points") or {}).items():
        if group in ("scripts", "gui-scripts", "console_scripts"):
            continue  # a pack may not put commands on the user's PATH
        entry_points.setdefault(group, {}).update(items)
    ep_text = "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(items.items())) + "\n"
                      for g, items in sorted(entry_points.items()))
    files: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(archive) as src:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            files.append((f"{package}/{info.filename}", src.read(info)))
    if not any(name == f"{package}/__init__.py" for name, _ in files):
        files.append((f"{package}/__init__.py", b""))
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
