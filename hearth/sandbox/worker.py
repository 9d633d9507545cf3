"""The child side of the isolated import: run as a script (``python -I -B worker.py MODE CONFIG``), never imported.

Two stages, two processes:

``warden``  Our own code, started by :mod:`hearth.sandbox.isolate`. It unshares user, network, pid, mount, IPC and UTS
            namespaces, checks that only the loopback interface exists, makes every mount read-only, puts a
            small tmpfs on the temporary HOME, then forks the import process as pid 1 of the new pid namespace.
            It enforces the wall-clock limit: killing pid 1 makes the kernel kill every process in the namespace,
            so a fork bomb or a daemonized child cannot outlive it. It prints one JSON object on stdout.
``import``  pid 1 of the namespace, with resource limits set, every capability dropped and ``no_new_privs``.
            It is the only place pack code ever runs. It imports the pack, lists its node classes, and writes
            a sealed JSON report to a pipe (fd 3); its stdout is redirected to stderr so pack output cannot
            reach the warden's.

The report cannot be forged by a pack that writes its own. Pack code shares the import stage's process, so no
secret held there before pack code runs is safe from it (memory, environment and descriptors are all readable).
The seal therefore uses a key that does not exist in that process until pack code has finished:

1. Before any pack code runs, the import stage closes every descriptor but 0-2, the report pipe (fd 3) and the
   read end of a key pipe (fd 4). The warden holds a fresh 32-byte key from ``os.urandom``, in its own process.
2. After the pack is imported and its nodes listed, the import stage checks that no other Python thread of this
   process (``sys._current_frames``; native worker threads of torch or OpenMP run no Python) and no other process
   of the namespace (``/proc``) is alive — nothing of the pack's is left running that could read the key as it
   arrives — then writes exactly ``KEY?\n`` to fd 3.
3. The warden answers the first request, and only a request that is the first bytes on the pipe, with the key
   on fd 4, then closes it. The import stage seals the report (HMAC-SHA256 with functions captured before pack
   code ran) as ``REPORT <mac>\n<json>`` and exits at once.
4. The warden checks the frame and the MAC. Bytes before the request, a second report, a bad MAC or trailing
   bytes make the report *forged*: the parent discards it and its node list (``import.forged-report``). A pack
   that left a thread or process running gets an unsealed report: also discarded, also a finding.

So a pack that writes a fake report to every descriptor and calls ``os._exit(0)`` — the attack this exists for —
is caught: its bytes precede any key request. What the seal does *not* stop, and why it is still evidence rather
than proof: pack code that, instead of exiting, rewrites the import stage's own Python objects in memory (its
functions, the audit hook's counters) before returning control, or that sends the key request itself and then
signs a report of its own. Both need code written against this harness, which a reviewer sees in the diff, and
the static scan flags the primitives they need (``evasion.raw-descriptor`` for writes to descriptors by number,
``process.exit``, ``code.monkeypatch``, ``code.builtins``, ``code.native``) — a triage aid, not a proof.
The namespaces and limits remain the security boundary. The warden's own observations (exit status, signals,
CPU, timeouts) never pass through the pack's process and cannot be forged. Linux only; anything missing is
reported, not faked.
"""

from __future__ import annotations

import hmac
import importlib.util
import json
import os
import resource
import select
import signal
import sys
import time
import traceback


def _load_namespaces():  # noqa: ANN202 - the sibling module, loaded by its path: this runs as a script under -I
    module = sys.modules.get("hearth_host_namespaces")
    if module is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "namespaces.py")
        spec = importlib.util.spec_from_file_location("hearth_host_namespaces", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


ns = _load_namespaces()  # unshare, mounts, rlimits, capabilities: shared with the pack host (host_worker.py)
RESULT_FD = 3
KEY_FD = 4
KEY_REQUEST = b"KEY?\n"
KEY_BYTES = 32


# -- warden ------------------------------------------------------------------------------------------------------


def warden(config: dict) -> int:
    limits = config["limits"]
    info: dict = {"platform": sys.platform}
    namespaces, reason = ns.unshare()
    if reason:
        _emit({"isolation": dict(info, available=False, reason=reason)})
        return 3
    problem = ns.loopback_only()
    if problem:
        _emit({"isolation": dict(info, available=False, reason=problem)})
        return 3
    info.update(available=True, namespaces=namespaces, interfaces=["lo"],
                readonly_root=ns.readonly_root(), private_home=ns.mount_tmpfs(config["home"], limits["tmp_bytes"]))
    read_fd, write_fd = os.pipe()
    key_read, key_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            os.close(key_write)
            _exec_import(config, write_fd, key_read)
        finally:
            os._exit(127)
    os.close(write_fd)
    os.close(key_read)
    outcome = _supervise(pid, read_fd, limits, _Seal(key_write))
    _emit(dict(outcome, isolation=info))
    return 0


class _Seal:
    """The warden's half of the sealed report: hands out the key once, on a well-formed first request, and
    judges what arrived. The key lives only here until the import stage asks for it."""

    def __init__(self, key_fd: int) -> None:
        self.key = os.urandom(KEY_BYTES)
        self.key_fd: int | None = key_fd
        self.verdict: str | None = None  # "forged: why", set as soon as the stream breaks the protocol

    def feed(self, data: bytes) -> None:
        """Look at the stream so far; answer the key request the moment it is complete."""
        if self.key_fd is None or self.verdict:
            return
        if data.startswith(b"UNSEALED "[:len(data)]):
            if len(data) >= len(b"UNSEALED "):
                self._close()  # the harness said it will not ask: nobody gets the key
            return
        if data[:len(KEY_REQUEST)] != KEY_REQUEST[:len(data)]:
            self.verdict = "forged: bytes came before the harness asked for its key"
            self._close()
        elif len(data) >= len(KEY_REQUEST):
            try:
                os.write(self.key_fd, self.key)
            finally:
                self._close()

    def _close(self) -> None:
        if self.key_fd is not None:
            os.close(self.key_fd)
            self.key_fd = None

    def judge(self, data: bytes) -> tuple[str, bytes]:
        """(``"sealed"``, report) when the stream is one request and one report the key seals; else why not, with
        whatever the stream held (evidence only: the parent may add findings from it, never take nodes)."""
        self._close()
        if self.verdict:
            return self.verdict, data
        if not data:
            return "missing", b""
        if data.startswith(b"UNSEALED "):
            reason, _, body = data[len(b"UNSEALED "):].partition(b"\n")
            return "unsealed: " + reason.decode("utf-8", "replace")[:200], body
        if not data.startswith(KEY_REQUEST + b"REPORT "):
            return "forged: no sealed report after the key request", data
        header, _, body = data[len(KEY_REQUEST):].partition(b"\n")
        mac = header[len(b"REPORT "):].decode("ascii", "replace")
        if not hmac.compare_digest(mac, hmac.new(self.key, body, "sha256").hexdigest()):
            return "forged: the report's seal does not match", body
        return "sealed", body


def _supervise(pid: int, fd: int, limits: dict, seal: _Seal) -> dict:
    """Collect pid 1's report until it exits or the wall-clock limit passes; then describe how it ended."""
    deadline = time.monotonic() + limits["wall_seconds"]
    chunks: list[bytes] = []
    size, open_pipe = 0, True
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            crowd = _processes_in_namespace_of(pid)
            os.kill(pid, signal.SIGKILL)  # pid 1 of the namespace: the kernel kills the rest with it
            os.waitpid(pid, 0)
            return {"timed_out": True, "processes_at_timeout": crowd, "exit_code": None,
                    "report": _judged(seal, b"".join(chunks))}
        if open_pipe:
            ready, _, _ = select.select([fd], [], [], min(left, 0.05))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_pipe = False
                elif size < limits["output_bytes"]:
                    chunks.append(chunk)
                    size += len(chunk)
                    if seal.key_fd is not None:  # only the stream's start decides whether the key goes out
                        seal.feed(b"".join(chunks))
        else:
            time.sleep(min(left, 0.02))
    while open_pipe and size < limits["output_bytes"]:  # pid 1 is gone; drain what it wrote
        ready, _, _ = select.select([fd], [], [], 0.5)
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return {"timed_out": False, "exit_code": os.waitstatus_to_exitcode(status),
            "cpu_used": round(usage.ru_utime + usage.ru_stime, 2), "report": _judged(seal, b"".join(chunks))}


def _judged(seal: _Seal, data: bytes) -> dict:
    seal.feed(data)
    state, body = seal.judge(data)
    return {"state": state, "result": body.decode("utf-8", "replace")}


def _processes_in_namespace_of(pid: int) -> int:
    try:
        target = os.readlink(f"/proc/{pid}/ns/pid_for_children")
        inner = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return 0
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") in (target, inner):
                    count += 1
            except OSError:
                continue
    return count


def _exec_import(config: dict, write_fd: int, key_fd: int) -> None:
    """In the forked pid 1: tighten everything that can be tightened, then become the import stage."""
    limits = config["limits"]
    # A /proc that shows only this namespace, in a mount namespace of its own so the warden keeps the outer one.
    ns.mount_proc()
    ns.set_pid_max(limits["max_processes"])
    ns.set_rlimits({"RLIMIT_CPU": limits["cpu_seconds"], "RLIMIT_AS": limits["memory_bytes"],
                    "RLIMIT_FSIZE": limits["file_size_bytes"], "RLIMIT_NOFILE": limits["open_files"],
                    "RLIMIT_NPROC": limits["max_processes"], "RLIMIT_CORE": 0})
    # Should the warden itself be killed, take pid 1 (and with it the whole namespace) along.
    ns.die_with_parent()
    ns.drop_privileges()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.dup2(write_fd, RESULT_FD)
    os.dup2(key_fd, KEY_FD)
    os.chdir(config["home"])
    env = {"HOME": config["home"], "TMPDIR": config["home"], "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    argv = [sys.executable, "-I", "-B", os.path.abspath(__file__), "import", json.dumps(config)]
    os.execve(sys.executable, argv, env)


def _emit(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload))
    sys.stdout.flush()


# -- import stage (pack code runs here) ------------------------------------------------------------------------

_WATCHED = {
    "socket.connect": "network", "socket.bind": "network", "socket.sendto": "network",
    "socket.getaddrinfo": "network", "socket.gethostbyname": "network", "socket.gethostbyaddr": "network",
    "urllib.Request": "network", "subprocess.Popen": "process", "os.system": "process", "os.exec": "process",
    "os.posix_spawn": "process", "os.spawn": "process", "os.fork": "fork", "os.forkpty": "fork",
}


def import_stage(config: dict) -> None:
    # Only the pipes the harness needs survive into the process that runs pack code.
    os.closerange(KEY_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    me = os.getpid()
    events: list[list[str]] = []
    counts: dict[str, int] = {}

    def audit(event: str, args: tuple) -> None:
        kind = _WATCHED.get(event)
        if kind and os.getpid() == me:
            counts[kind] = counts.get(kind, 0) + 1
            if len(events) < 50:
                events.append([event, repr(args)[:200]])

    sys.addaudithook(audit)
    unsafe = ns.privileges_left()
    if unsafe:  # never import with privileges: report and stop
        _write_result({"isolation_failed": unsafe})
    # pid 1 of a namespace ignores signals it has no handler for, so the CPU limit needs one to take effect.
    signal.signal(signal.SIGXCPU, lambda *_: os._exit(128 + signal.SIGXCPU))
    result: dict = {"nodes": [], "events": events, "counts": counts, "error": None}
    try:
        pack = config["pack"]
        if os.path.exists(os.path.join(pack, "__init__.py")):
            result["nodes"] += _comfyui_nodes(config["module"], pack)
        for name, target in config["entry_points"]:
            result["nodes"] += _hearth_nodes(name, target, pack)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and MemoryError are findings too
        result["error"] = {"type": type(exc).__name__, "message": str(exc)[:500], "errno": getattr(exc, "errno", None),
                           "traceback": traceback.format_exc()[-3000:]}
    if os.getpid() != me:  # a fork of the pack's reached here: only pid 1 reports
        os._exit(0)
    _write_result(result)


# Captured when this script starts, before any pack code can replace the module attributes they come from.
_dumps, _write, _read, _exit, _listdir = json.dumps, os.write, os.read, os._exit, os.listdir
_frames = sys._current_frames
_mac = hmac.new


def _write_result(result: dict) -> None:
    """Seal the report with the key the warden gives only now (see the module docstring), send it, exit."""
    data = _dumps(result, default=repr).encode()
    alive = _others_alive()
    if alive:
        _send(b"UNSEALED " + alive.encode() + b"\n" + data)
        _exit(0)
    _send(KEY_REQUEST)
    key = b""
    while len(key) < KEY_BYTES:
        chunk = _read(KEY_FD, KEY_BYTES - len(key))
        if not chunk:
            _exit(0)  # the warden refused: something wrote before us
        key += chunk
    _send(b"REPORT " + _mac(key, data, "sha256").hexdigest().encode() + b"\n" + data)
    _exit(0)


def _send(data: bytes) -> None:
    while data:
        data = data[_write(RESULT_FD, data):]


def _others_alive() -> str:
    """Why the key must not come now: another thread of ours, or another live process in the namespace."""
    threads = len(_frames())  # Python threads only: a library's native pool (torch, OpenMP) runs no pack code
    if threads > 1:
        return f"{threads - 1} thread(s) of the pack were still running"
    me = os.readlink("/proc/self/ns/pid")
    others = 0
    for entry in _listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != me:
                continue
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[-1].split()[0]
        except OSError:
            continue  # gone, or not ours to see
        if state not in (b"Z", b"X"):
            others += 1
    return f"{others} process(es) of the pack were still running" if others else ""


def _comfyui_nodes(module: str, pack: str) -> list[dict]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(module, os.path.join(pack, "__init__.py"),
                                                  submodule_search_locations=[pack])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
    mappings = getattr(mod, "NODE_CLASS_MAPPINGS", None)
    if mappings is None and callable(getattr(mod, "register_nodes", None)):
        return _from_hook(mod, module)  # a Hearth plugin module at the top of the pack
    names = getattr(mod, "NODE_DISPLAY_NAME_MAPPINGS", None) or {}
    return [_describe(str(name), cls, "comfyui", names.get(name)) for name, cls in dict(mappings or {}).items()]


def _hearth_nodes(name: str, target: str, pack: str) -> list[dict]:
    import importlib

    for folder in (os.path.join(pack, "src"), pack):
        if os.path.isdir(folder):
            sys.path.insert(0, folder)
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return _from_hook(obj, name)


def _from_hook(obj: object, name: str) -> list[dict]:
    hook = getattr(obj, "register_nodes", None)
    if hook is None:
        return []
    found = hook() or {}
    if hasattr(found, "items"):
        pairs = [(str(k), v, None) for k, v in found.items()]
    else:
        pairs = [(str(d.name), d.cls, getattr(d, "display_name", None)) for d in found]
    return [dict(_describe(n, cls, "hearth", display), plugin=name) for n, cls, display in pairs]


def _describe(name: str, cls: type, kind: str, display: object) -> dict:
    node: dict = {"name": name, "kind": kind, "category": str(getattr(cls, "CATEGORY", "") or ""),
                  "display_name": str(display or getattr(cls, "DISPLAY_NAME", None) or name),
                  "inputs": {}, "outputs": [], "output_names": []}
    try:
        raw = cls.INPUT_TYPES()
        for section in ("required", "optional", "hidden"):
            items = (raw.get(section) or {}).items()
            if section == "hidden":
                node["inputs"][section] = {str(k): str(v) for k, v in items}
            else:
                node["inputs"][section] = {str(k): _input_type(v) for k, v in items}
        outputs = getattr(cls, "RETURN_TYPES", ())
        node["outputs"] = [t if isinstance(t, str) else "COMBO" for t in outputs]
        node["output_names"] = [str(n) for n in (getattr(cls, "RETURN_NAMES", None) or node["outputs"])]
    except Exception as exc:  # a node's own error; the other nodes are still listed
        node["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return node


def _input_type(value: object) -> str:
    # (TYPE, options) where TYPE is a type name or a list of choices (a combo)
    if isinstance(value, (list, tuple)) and value:
        first = value[0]
        return "COMBO" if isinstance(first, (list, tuple)) else str(first)
    return str(value)


def main(argv: list[str]) -> int:
    mode, config = argv[1], json.loads(argv[2])
    if mode == "warden":
        return warden(config)
    if mode == "import":
        import_stage(config)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
