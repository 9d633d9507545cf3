"""The isolated import, parent side: copy the pack read-only, start the sandboxed child, turn what happened into
nodes and findings. The child (:mod:`hearth.sandbox.worker`) is the only process that runs pack code.

The caller never hangs: the warden enforces the wall-clock limit inside the sandbox, and this side kills the
warden's whole process group if even that does not answer in time.

Only a report the harness sealed (see :mod:`hearth.sandbox.worker`) gives nodes or a clean import; a forged or
unsealed one is an ``import.forged-report`` finding and may only add findings.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hearth.sandbox.archive import NOT_SHIPPED_DIRS
from hearth.sandbox.findings import Finding
from hearth.sandbox.rules import finding

WORKER = Path(__file__).with_name("worker.py")
GiB, MiB = 1024**3, 1024**2
_GRACE_SECONDS = 15  # how long the warden may take beyond the wall limit before this side kills it
_MAX_NODES = 5000
# Findings that mean the import did not complete (a network attempt that failed, say, does not).
_FATAL = frozenset({"import.timeout", "import.cpu-limit", "import.memory-limit", "import.file-size-limit",
                    "import.process-limit", "import.crash"})


@dataclass(frozen=True)
class ImportLimits:
    """Resource limits for the import child. Memory is address space: torch alone maps a few GiB."""

    wall_seconds: float = 60.0
    cpu_seconds: int = 30
    memory_bytes: int = 8 * GiB
    max_processes: int = 64
    file_size_bytes: int = 64 * MiB
    open_files: int = 256
    tmp_bytes: int = 64 * MiB
    output_bytes: int = 4 * MiB


@dataclass
class ImportResult:
    import_ok: bool = False
    nodes: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    isolation: dict[str, Any] = field(default_factory=dict)


# Hearth's entry-point groups: "hearth" (installed tier) and "hearth.default" (default tier); both load pack code.
HEARTH_GROUPS = ("hearth", "hearth.default")


def hearth_entry_points(pack: Path) -> list[tuple[str, str]]:
    """The ``hearth`` and ``hearth.default`` entry points of the pack's pyproject.toml, read here (tomllib runs no
    pack code)."""
    try:
        data = tomllib.loads((pack / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []
    groups = data.get("project", {}).get("entry-points", {})
    found: list[tuple[str, str]] = []
    for name in HEARTH_GROUPS:
        group = groups.get(name, {}) if isinstance(groups, dict) else {}
        if isinstance(group, dict):
            found += [(str(k), str(v)) for k, v in group.items() if isinstance(v, str)]
    return found


def _module_name(pack: Path) -> str:
    name = re.sub(r"\W", "_", pack.name) or "pack"
    return name if not name[0].isdigit() else f"pack_{name}"


def _readonly_copy(src: Path, dest: Path) -> None:
    """Copy regular files and folders only; files 0444 and folders 0555, so the pack cannot change itself.

    Links and special files are left out even though the archive checks already refuse them: import_pack may
    be handed a folder nobody checked, and a link would let the pack read outside itself.
    """
    def skipped(folder: str, names: list[str]) -> list[str]:
        paths = [(name, os.path.join(folder, name)) for name in names]
        return [name for name, path in paths if name in NOT_SHIPPED_DIRS or os.path.islink(path)
                or not (os.path.isfile(path) or os.path.isdir(path))]

    shutil.copytree(src, dest, ignore=skipped)
    for folder, _, files in os.walk(dest, topdown=False):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)


def _remove(path: Path) -> None:
    def make_writable(func, target, _exc):  # noqa: ANN001 - shutil's onerror signature
        os.chmod(os.path.dirname(target), stat.S_IRWXU)
        func(target)

    for folder, _, _ in os.walk(path):
        os.chmod(folder, stat.S_IRWXU)
    shutil.rmtree(path, onerror=make_writable)


def import_pack(pack: str | os.PathLike[str], limits: ImportLimits = ImportLimits(),
                tmp_dir: str | os.PathLike[str] | None = None) -> ImportResult:
    """Import the pack in the sandbox and list its node classes; problems come back as findings.

    :param tmp_dir: where the sandbox's working folder goes (the system's temporary folder by default); a server
        passes a folder of its own so that what a killed process leaves there is found and removed at its start.
    """
    pack = Path(pack)
    if not sys.platform.startswith("linux"):
        return _unavailable(f"{sys.platform} has no network namespaces")
    tmp = Path(tempfile.mkdtemp(prefix="hearth-sandbox-", dir=tmp_dir))
    try:
        module = _module_name(pack)
        copy = tmp / "pack" / module
        _readonly_copy(pack, copy)
        home = tmp / "home"
        home.mkdir(mode=0o700)
        config = {"pack": str(copy), "module": module, "home": str(home), "limits": asdict(limits),
                  "entry_points": hearth_entry_points(pack)}
        raw, problem = _run_warden(config, tmp, limits)
    finally:
        _remove(tmp)
    if problem is not None:
        return ImportResult(findings=[problem])
    return interpret(raw, limits)


def _run_warden(config: dict, tmp: Path, limits: ImportLimits) -> tuple[str, Finding | None]:
    """Start the warden and wait for its JSON; a warden that hangs or dies silently is a finding."""
    env = {"PATH": "/usr/bin:/bin", "HOME": config["home"], "TMPDIR": config["home"], "LANG": "C.UTF-8"}
    argv = [sys.executable, "-I", "-B", str(WORKER), "warden", json.dumps(config)]
    with open(tmp / "stderr.log", "w+b") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
                                cwd=tmp, start_new_session=True, close_fds=True)
        try:
            out, _ = proc.communicate(timeout=limits.wall_seconds + _GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            return "", finding("import.timeout", ".", 0, "", "the sandbox itself did not answer in time")
        finally:
            _kill_group(proc.pid)
        err.seek(max(0, err.seek(0, os.SEEK_END) - 4000))
        tail = err.read().decode("utf-8", "replace")
    if not out:
        return "", finding("import.crash", ".", 0, tail.strip()[-300:], f"the sandbox exited with {proc.returncode}")
    return out.decode("utf-8", "replace"), None


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _unavailable(reason: str) -> ImportResult:
    return ImportResult(findings=[finding("import.isolation-unavailable", ".", 0, reason, reason)],
                        isolation={"available": False, "reason": reason})


def interpret(raw: str, limits: ImportLimits = ImportLimits()) -> ImportResult:
    """Turn the warden's JSON into an :class:`ImportResult`. The inner result is untrusted: validate it."""
    try:
        outer = json.loads(raw)
    except json.JSONDecodeError:
        return ImportResult(findings=[finding("import.crash", ".", 0, raw[:200], "the sandbox answered nonsense")])
    isolation = outer.get("isolation", {})
    if not isolation.get("available"):
        return _unavailable(str(isolation.get("reason", "unknown reason")))
    result = ImportResult(isolation=isolation)
    findings = result.findings
    code = outer.get("exit_code")
    report = outer.get("report") if isinstance(outer.get("report"), dict) else {}
    state = str(report.get("state", "missing"))
    sealed = state == "sealed"
    if state.startswith(("forged", "unsealed")):
        # Not the harness's report (see hearth.sandbox.worker): it may add findings, never nodes or a clean import.
        findings.append(finding("import.forged-report", ".", 0, state, state.partition(": ")[2]))
    try:
        inner = json.loads(report.get("result") or "null")
    except json.JSONDecodeError:
        inner = None
    if not isinstance(inner, dict):
        inner = {}
    if sealed and inner.get("isolation_failed"):
        return _unavailable(str(inner["isolation_failed"]))
    counts = inner.get("counts") if isinstance(inner.get("counts"), dict) else {}
    events = [e for e in inner.get("events", []) if isinstance(e, list) and len(e) == 2]
    error = inner.get("error") if isinstance(inner.get("error"), dict) else None
    error_text = f"{error.get('type')}: {error.get('message')}" if error else ""

    crowd = int(outer.get("processes_at_timeout") or 0)
    cpu_used = outer.get("cpu_used") or 0
    if outer.get("timed_out"):
        findings.append(finding("import.timeout", ".", 0, f"{crowd} processes running" if crowd > 1 else ""))
        if crowd > 8:
            findings.append(finding("import.process-limit", ".", 0, f"{crowd} processes"))
    elif code == 128 + signal.SIGXCPU or code == -signal.SIGKILL and cpu_used >= limits.cpu_seconds:
        findings.append(finding("import.cpu-limit", ".", 0, f"{cpu_used} s of CPU"))
    elif isinstance(code, int) and code < 0:
        sig = -code
        rule = "import.file-size-limit" if sig == signal.SIGXFSZ else "import.crash"
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        findings.append(finding(rule, ".", 0, f"killed by {name}"))
    elif not inner:
        findings.append(finding("import.crash", ".", 0, f"exit code {code}, no report"))
    if error:
        if error.get("type") == "MemoryError":
            findings.append(finding("import.memory-limit", ".", 0, error_text))
        elif error.get("errno") == errno.EFBIG:
            findings.append(finding("import.file-size-limit", ".", 0, error_text))
        elif error.get("type") == "BlockingIOError" and counts.get("fork", 0) > 1:
            findings.append(finding("import.process-limit", ".", 0, error_text))
        else:
            last = str(error.get("traceback", "")).strip().splitlines()[-1:] or [error_text]
            findings.append(finding("import.failed", ".", 0, last[0], error_text[:200]))
    for kind, rule in (("network", "import.network"), ("process", "import.subprocess"), ("fork", "import.subprocess")):
        if counts.get(kind):
            example = next((f"{e[0]}{e[1]}" for e in events if _kind_of(e[0]) == kind), kind)
            if not any(f.rule == rule for f in findings):
                findings.append(finding(rule, ".", 0, example, f"{counts[kind]} attempt(s)"))
    if not sealed:
        return result
    result.nodes = _valid_nodes(inner.get("nodes"))
    result.import_ok = bool(inner) and error is None and not any(f.rule in _FATAL for f in findings)
    return result


def _kind_of(event: str) -> str:
    if event.startswith(("socket.", "urllib.")):
        return "network"
    return "fork" if event.startswith("os.fork") else "process"


def _valid_nodes(nodes: Any) -> list[dict[str, Any]]:
    """Keep well-formed node descriptions only, with plain JSON types and bounded sizes."""
    if not isinstance(nodes, list):
        return []
    valid = []
    for node in nodes[:_MAX_NODES]:
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            continue
        inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
        clean = {
            "name": node["name"][:200],
            "category": str(node.get("category", ""))[:200],
            "inputs": {str(section): {str(k)[:200]: str(v)[:200] for k, v in items.items()}
                       for section, items in inputs.items() if isinstance(items, dict)},
            "outputs": [str(t)[:200] for t in node.get("outputs", []) if isinstance(node.get("outputs"), list)],
            "kind": "hearth" if node.get("kind") == "hearth" else "comfyui",
            "display_name": str(node.get("display_name", node["name"]))[:200],
            "output_names": [str(t)[:200] for t in node.get("output_names", []) if isinstance(node.get("output_names"), list)],
        }
        if node.get("error"):
            clean["error"] = str(node["error"])[:300]
        valid.append(clean)
    return valid
