"""Hearth's own minimal checks, used when `sandbox` is not installed: archive safety, a static scan, and node
classes read from the source without importing it (untrusted code never runs in the server process)."""

from __future__ import annotations

import ast
import stat
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath


@dataclass
class Finding:
    rule: str
    severity: str  # info | warning | error
    path: str = ""
    line: int | None = None
    snippet: str = ""
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Limits:
    max_files: int = 10_000
    max_unpacked_bytes: int = 1024 * 1024 * 1024
    max_compression_ratio: int = 200


@dataclass
class Report:
    verdict: str  # pass | flag | reject
    findings: list[Finding] = field(default_factory=list)
    nodes: list[dict] = field(default_factory=list)
    import_ok: bool = False

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "findings": [f.to_dict() for f in self.findings], "nodes": self.nodes,
                "import_ok": self.import_ok}


def check_archive(path: str, limits: Limits | None = None) -> list[Finding]:
    """Structural dangers: not a zip, path traversal, absolute paths, links, devices, bombs. All are errors."""
    limits = limits or Limits()
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return [Finding("archive.not_zip", "error", message=f"not a zip archive: {exc}")]
    out: list[Finding] = []
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files:
            out.append(Finding("archive.too_many_files", "error",
                               message=f"{len(infos)} entries; the limit is {limits.max_files}"))
        total = 0
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            p = PurePosixPath(name.replace("\\", "/"))
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
                out.append(Finding("archive.absolute_path", "error", name, message="absolute path in archive"))
            elif ".." in p.parts:
                out.append(Finding("archive.path_traversal", "error", name,
                                   message="entry escapes the extraction folder with '..'"))
            # Many zip writers set permission bits without a file type; only a type we can see is judged.
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                out.append(Finding("archive.special_file", "error", name,
                                   message="symbolic links and device files are not allowed"))
            key = name.lower().rstrip("/")
            if key in seen:
                out.append(Finding("archive.duplicate_entry", "error", name, message="entry appears twice"))
            seen.add(key)
            total += info.file_size
            if info.compress_size and info.file_size / info.compress_size > limits.max_compression_ratio \
                    and info.file_size > 1 << 20:
                out.append(Finding("archive.compression_ratio", "error", name,
                                   message=f"compression ratio {info.file_size // info.compress_size}:1 "
                                           f"exceeds {limits.max_compression_ratio}:1 (zip bomb?)"))
        if total > limits.max_unpacked_bytes:
            out.append(Finding("archive.too_large_unpacked", "error",
                               message=f"{total} bytes unpacked; the limit is {limits.max_unpacked_bytes}"))
    return out


# Calls that deserve a human look in a node pack; none is forbidden, so they flag rather than reject.
SUSPICIOUS_CALLS = {
    "eval": "dynamic code evaluation", "exec": "dynamic code execution", "compile": "dynamic compilation",
    "os.system": "shell command", "os.popen": "shell command", "subprocess.Popen": "subprocess",
    "subprocess.run": "subprocess", "subprocess.call": "subprocess", "subprocess.check_call": "subprocess",
    "subprocess.check_output": "subprocess", "pickle.loads": "unpickling data", "marshal.loads": "loading code",
    "__import__": "dynamic import",
}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _nodes_from_mapping(tree: ast.Module, classes: dict[str, ast.ClassDef]) -> list[dict]:
    nodes = []
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if not any(isinstance(t, ast.Name) and t.id == "NODE_CLASS_MAPPINGS" for t in targets):
            continue
        if not isinstance(stmt.value, ast.Dict):
            continue
        for key, value in zip(stmt.value.keys, stmt.value.values, strict=False):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                cls = classes.get(value.id) if isinstance(value, ast.Name) else None
                nodes.append({"name": key.value, "category": _class_attr(cls, "CATEGORY"),
                              "inputs": {}, "outputs": list(_class_attr(cls, "RETURN_TYPES") or []),
                              "kind": "comfyui"})
    return nodes


def _class_attr(cls: ast.ClassDef | None, name: str):  # noqa: ANN202
    if cls is None:
        return ""
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            try:
                return ast.literal_eval(stmt.value)
            except (ValueError, SyntaxError):
                return ""
    return ""


def scan_archive(path: str, limits: Limits | None = None) -> Report:
    """Archive checks, a static scan of every .py file, and node classes from NODE_CLASS_MAPPINGS literals."""
    findings = check_archive(path, limits)
    if any(f.severity == "error" for f in findings):
        return Report("reject", findings)
    nodes: list[dict] = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".py") or info.file_size > 2 * 1024 * 1024:
                continue
            source = zf.read(info).decode("utf-8", "replace")
            try:
                tree = ast.parse(source, info.filename)
            except SyntaxError as exc:
                findings.append(Finding("python.syntax_error", "warning", info.filename, exc.lineno,
                                        (exc.text or "").strip()[:200], f"does not parse: {exc.msg}"))
                continue
            lines = source.splitlines()
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    name = _dotted(node.func)
                    if name in SUSPICIOUS_CALLS:
                        line = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
                        findings.append(Finding(f"python.{name}", "warning", info.filename, node.lineno,
                                                line[:200], f"{SUSPICIOUS_CALLS[name]} ({name}) needs review"))
            classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
            nodes.extend(_nodes_from_mapping(tree, classes))
    verdict = "flag" if any(f.severity in ("warning", "error") for f in findings) else "pass"
    return Report(verdict, findings, nodes, import_ok=False)
