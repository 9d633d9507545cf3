"""Pack hosts, Hearth's side: a long-lived isolated process per untrusted pack, and calls into it.

::

    host = PackHost(HostConfig(name="evil", entry="hearth_comfy_compat.host_side:entry", args={...},
                               readable=(pack_dir,), writable=(scratch, output_dir)), exports=policy)
    host.describe()                       # starts the host; {"nodes": {name: {"attributes": ..., ...}}, ...}
    host.call("EvilNode", "run", {"image": tensor}, on_event=lambda kind, data: ...)
    host.interrupt()                      # from another thread; past interrupt_grace_s the host is killed
    host.close()

The host (:mod:`hearth.sandbox.host_worker`) runs in fresh user, pid, mount, IPC, UTS and network namespaces with a
read-only root, its own /dev, HOME and the temporary folders hidden behind empty tmpfs, rlimits, no capabilities,
``no_new_privs`` and a seccomp filter (no Unix-domain sockets, io_uring or keyrings). Values cross in the closed
encoding of :mod:`hearth.sandbox.wire` (tensors and numpy arrays through sealed shared memory, never pickled). A host-side value of a type the pack defines stays there: Hearth holds a
:class:`HostValue`, which passed back to the same host is the original object. A Hearth value whose kind the
:class:`ExportPolicy` knows (MODEL, CLIP, VAE...) is lent to the host as a remote object: the host may call the
methods the policy allows, which run here, during the call.

Every failure is one line that names the pack: ``pack 'evil': its host died (killed by SIGKILL) while running
EvilNode``. After a crash, a kill or a hang past the interrupt, the next use starts a fresh host.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import logging
import mmap
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hearth.sandbox import wire

GiB = 1024**3
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "host_worker.py")
HEARTH_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HIDDEN = ("/root", "/home", "/tmp", "/var/tmp", "/dev/shm", "/run/user", "/run/secrets")  # as host_worker.HIDDEN
TMP_BYTES = 1 * GiB  # the host's own /tmp and /dev/shm (memory-backed, used only as the pack writes)
log = logging.getLogger("hearth.packhost")
_MAX_OUTPUT_LINE = 8192  # bytes of one line of pack output; a longer one is cut into several
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class PackHostError(RuntimeError):
    """A pack host failed; ``str()`` is one line that names the pack."""


class TrustRequired(PackHostError):
    """The pack needs more of Hearth's process than an isolated pack may use: it must be trusted to run."""


class HostInterrupted(PackHostError):
    """The call stopped because Hearth interrupted it (the host stopped in time, or was killed)."""


class NodeError(PackHostError):
    """The node raised in the host; ``type_name`` and ``remote_traceback`` say what and where."""

    def __init__(self, message: str, type_name: str = "", remote_traceback: str = "", *, remote_message: str = "",
                 remote_type: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback
        self.remote_message = remote_message  # the node's own message, without the pack's name
        self.remote_type = remote_type or type_name  # its type as module.qualname, as an in-process error shows it


@dataclass(frozen=True)
class HostLimits:
    memory_bytes: int = 16 * GiB  # address space (RLIMIT_AS): torch alone maps a few GiB
    max_processes: int = 256
    open_files: int = 1024
    file_size_bytes: int = 4 * GiB
    start_timeout_s: float = 120.0
    interrupt_grace_s: float = 5.0


@dataclass(frozen=True)
class HostConfig:
    name: str
    entry: str  # "module:function", called in the host: function(args, host_runtime) -> {"nodes", "display", ...}
    args: dict = field(default_factory=dict)
    readable: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()
    sys_path: tuple[str, ...] = ()
    network: bool = False
    limits: HostLimits = HostLimits()


class ExportPolicy(Protocol):
    def kind_of(self, value: Any) -> str | None: ...

    def allowed(self, kind: str, method: str) -> bool: ...


class HostValue:
    """A value that stays in a pack's host (a type the pack defines). Passed back to the same host it is the
    original object; the host lets go of it when this object is garbage collected."""

    __slots__ = ("pack", "id", "type_name", "generation", "_owner", "__weakref__")

    def __init__(self, pack: str, hid: int, type_name: str, generation: int, owner: PackHost) -> None:
        self.pack, self.id, self.type_name, self.generation = pack, hid, type_name, generation
        self._owner = weakref.ref(owner)

    def __repr__(self) -> str:
        return f"<{self.type_name} in pack {self.pack!r}'s host #{self.id}>"


# -- is isolation possible here? ------------------------------------------------------------------------------------

_probe_lock = threading.Lock()
_probe: tuple[bool, str] | None = None


def isolation_available() -> tuple[bool, str]:
    """``(True, "")`` when this machine can make a pack host's namespaces; else ``(False, why)``. Probed once per
    process, in a throw-away child that unshares exactly as a host's warden does."""
    global _probe
    with _probe_lock:
        if _probe is None:
            _probe = probe_isolation()
        return _probe


def probe_isolation(argv_prefix: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Run the probe now (uncached). ``argv_prefix`` runs it under a wrapper (tests use this to take rights away)."""
    if not sys.platform.startswith("linux"):
        return False, f"{sys.platform} has no user, pid, mount and network namespaces: pack hosts need Linux"
    argv = [*argv_prefix, sys.executable, "-I", "-B", WORKER, "probe", "{}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=_plain_env(), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"the isolation probe could not run: {exc}"
    for line in done.stdout.splitlines():
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(answer, dict) and "available" in answer:
            return bool(answer["available"]), str(answer.get("reason") or "")
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
    return False, f"the isolation probe failed (exit code {done.returncode}): {tail}"


def unavailable_message(pack: str, reason: str) -> str:
    """The one line for a pack that must run isolated where isolation is impossible, with the way out."""
    return (f"pack {pack!r} cannot run isolated here: {reason}; run it unisolated at your own risk with "
            f"--isolation off (or comfy trust {pack})")


def _plain_env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


# -- the host -------------------------------------------------------------------------------------------------------


class _Process:
    """One started host: its warden, socket and interrupt flag. Holds no reference to the PackHost, so that a
    finalizer can kill it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.channel: wire.Channel | None = None
        self.flag: mmap.mmap | None = None
        self.pid: int | None = None
        self.pidfd: int | None = None  # the host's pid 1, held so that a kill can never reach a reused pid
        self.dead = False
        self.killed = False
        self.kill_lock = threading.Lock()
        self.ending: dict | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.stderr_thread: threading.Thread | None = None
        self.stdout_lines: list[str] = []

    def kill(self) -> None:
        """Kill the host (and so every process of its namespace) and its warden; once: a pid is never signalled
        after its process is gone, since the number may belong to another process by then."""
        with self.kill_lock:
            if self.killed:
                return
            self.killed = True
        self.dead = True
        proc = self.proc
        if proc is None:
            return
        if self.channel is not None:
            self.channel.close()
        try:
            if proc.stdin:
                proc.stdin.close()  # the warden kills the host when this closes
        except OSError:
            pass
        if self.pidfd is not None:
            try:  # pid 1 of its namespace: every process of the pack goes with it
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass
            os.close(self.pidfd)
            self.pidfd = None
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        self._read_ending(0.5)
        if self.stderr_thread is not None:
            self.stderr_thread.join(timeout=2)
        if self.flag is not None:
            try:
                self.flag.close()
            except BufferError:
                pass
            self.flag = None

    def _read_ending(self, timeout: float) -> None:
        proc = self.proc
        if proc is None or proc.stdout is None or self.ending is not None:
            return
        deadline = time.monotonic() + timeout
        while self.ending is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if not ready:
                return
            line = proc.stdout.readline()
            if not line:
                return
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(message, dict) and "exit_code" in message:
                self.ending = message

    def cause(self) -> str:
        """How the host ended, in a few words (after it did)."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._read_ending(2.0)
        if not self.ending:
            return "it went away"
        code = self.ending.get("exit_code")
        if isinstance(code, int) and code < 0:
            sig = -code
            name = signal.Signals(sig).name if sig in signal.valid_signals() else f"signal {sig}"
            extra = {signal.SIGXFSZ: ", file size limit", signal.SIGXCPU: ", CPU limit",
                     signal.SIGSEGV: ", a crash", signal.SIGABRT: ", an abort (out of memory?)",
                     signal.SIGBUS: ", a crash"}.get(sig, "")
            return f"killed by {name}{extra}"
        return f"exited with code {code}"


class PackHost:
    """One isolated pack's host process; started on first use, restarted after it died. Thread-safe: one call at a
    time (a call from another thread waits); :meth:`interrupt` may come from any thread."""

    def __init__(self, config: HostConfig, exports: ExportPolicy | None = None) -> None:
        self.config = config
        self.name = config.name
        self.exports = exports
        self._lock = threading.RLock()
        self._process: _Process | None = None
        self._finalizer: weakref.finalize | None = None
        self._generation = 0
        self._description: dict | None = None
        self._codec = wire.Codec(self._other, self._handle)
        self._lent: dict[int, list] = {}  # remote id -> [value, times lent, kind]
        self._lent_of: dict[int, int] = {}  # id(value) -> remote id
        self._next_lent = 0
        self._released: list[int] = []  # host values whose HostValue here died
        self._next_id = 0
        self._interrupt_at: float | None = None
        self._calling = False
        self._call_seq = 0  # numbers the calls, so an interrupt meant for one call never reaches the next
        self._interrupt_asked = False
        self._closed = False

    # -- public -----------------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and not process.dead else None

    @property
    def alive(self) -> bool:
        process = self._process
        return bool(process is not None and not process.dead and process.proc is not None
                    and process.proc.poll() is None)

    def describe(self) -> dict:
        with self._lock:
            self._ensure()
            assert self._description is not None
            return self._description

    def input_types(self, node: str) -> dict:
        with self._lock:
            self._ensure()
            return self._request({"op": "input_types", "node": node}, node, None)

    def call(self, node: str, method: str, kwargs: dict, *, on_event: Callable[[str, dict], Any] | None = None) -> Any:
        with self._lock:
            self._interrupt_at = None
            self._interrupt_asked = False
            self._calling = True
            self._call_seq += 1
            try:
                self._ensure()
                process = self._process
                assert process is not None
                # An interrupt that came while the host was starting counts for this call.
                _set_flag(process, 1 if self._interrupt_asked else 0)
                return self._request({"op": "call", "node": node, "method": method, "kwargs": kwargs}, node, on_event)
            finally:
                self._calling = False
                self._interrupt_at = None
                self._interrupt_asked = False

    @property
    def current_call(self) -> int | None:
        """The number of the call running now (``None`` between calls), for :meth:`interrupt`."""
        return self._call_seq if self._calling else None

    def interrupt(self, call: int | None = None) -> None:
        """Ask the running call to stop (``host_runtime.interrupted()`` turns True in the host); past
        ``interrupt_grace_s`` the host is killed and the call raises :class:`HostInterrupted`. No call: nothing.
        ``call`` (a :attr:`current_call` number): only that call, never one that began after it ended."""
        if not self._calling or (call is not None and call != self._call_seq):
            return
        self._interrupt_asked = True
        process = self._process
        if process is not None and not process.dead:
            _set_flag(process, 1)
        if self._interrupt_at is None:
            self._interrupt_at = time.monotonic() + self.config.limits.interrupt_grace_s

    def close(self) -> None:
        self._closed = True
        process = self._process
        if process is not None and not process.dead:
            process.kill()
        with self._lock:
            self._stop()

    def __enter__(self) -> PackHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PackHost {self.name!r} pid={self.pid}>"

    # -- starting and stopping --------------------------------------------------------------------------------------

    def _fail(self, text: str, cls: type[PackHostError] = PackHostError) -> PackHostError:
        return cls(f"pack {self.name!r}: {text}")

    def _ensure(self) -> None:
        if self._closed:
            raise self._fail("its host was closed")
        process = self._process
        if process is not None and not process.dead:
            return
        self._stop()
        self._start()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is not None:
            process.kill()
        self._lent.clear()
        self._lent_of.clear()
        self._released.clear()
        self._description = None

    def _start(self) -> None:
        ok, reason = isolation_available()
        if not ok:
            raise self._fail(unavailable_message(self.name, reason).split(": ", 1)[1])
        limits = self.config.limits
        self._generation += 1
        for folder in self.config.writable:
            os.makedirs(folder, exist_ok=True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        flag_fd = os.memfd_create("hearth-interrupt", os.MFD_CLOEXEC)
        process = _Process()
        try:
            os.ftruncate(flag_fd, mmap.PAGESIZE)
            process.flag = mmap.mmap(flag_fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            readable = [*self.config.readable, *(p for p in self.config.sys_path if p not in self.config.readable)]
            config = {"name": self.name, "network": self.config.network, "readable": readable,
                      "writable": list(self.config.writable), "python_paths": _python_paths(self.config),
                      "home": os.path.expanduser("~"), "tmp_bytes": TMP_BYTES, "hearth_root": HEARTH_ROOT,
                      "generation": self._generation, "sock_fd": theirs.fileno(), "flag_fd": flag_fd,
                      "limits": {"memory_bytes": limits.memory_bytes, "max_processes": limits.max_processes,
                                 "open_files": limits.open_files, "file_size_bytes": limits.file_size_bytes}}
            argv = [sys.executable, "-I", "-B", WORKER, "warden", json.dumps(config)]
            process.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            env=_plain_env(), cwd="/", start_new_session=True, close_fds=True,
                                            pass_fds=(theirs.fileno(), flag_fd))
        except BaseException:
            ours.close()
            process.kill()
            raise
        finally:
            theirs.close()
            os.close(flag_fd)
        process.channel = wire.Channel(ours)
        self._process = process
        self._finalizer = weakref.finalize(self, process.kill)
        process.stderr_thread = threading.Thread(target=_log_stderr, args=(self.name, process), daemon=True,
                                                 name=f"packhost-{self.name}-stderr")
        process.stderr_thread.start()
        deadline = time.monotonic() + limits.start_timeout_s
        try:
            self._await_pid(process, deadline)
            self._send({"op": "init", "entry": self.config.entry, "args": self.config.args,
                        "sys_path": list(self.config.sys_path)})
            answer = self._receive(process, deadline, "starting")
        except PackHostError:
            self._stop()
            raise
        if answer.get("op") == "fatal":
            error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
            self._stop()
            raise self._fail(f"its entry {self.config.entry} failed: {error.get('type')}: "
                             f"{_first_line(error.get('message'))}")
        if answer.get("op") != "ready" or not isinstance(answer.get("describe"), dict):
            self._stop()
            raise self._fail("its host answered its start with nonsense")
        self._description = answer["describe"]

    def _await_pid(self, process: _Process, deadline: float) -> None:
        assert process.proc is not None and process.proc.stdout is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"its host did not start within {self.config.limits.start_timeout_s:g} s")
            ready, _, _ = select.select([process.proc.stdout], [], [], left)
            if not ready:
                continue
            line = process.proc.stdout.readline()
            if not line:
                tail = process.stderr_tail[-1] if process.stderr_tail else f"exit code {process.proc.wait()}"
                raise self._fail(f"its host could not start: {tail}")
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "failed" in message:
                raise self._fail(unavailable_message(self.name, str(message["failed"])).split(": ", 1)[1])
            if "pid" in message:
                for problem in message.get("problems") or ():
                    log.warning("pack %s: %s", self.name, problem)
                process.pid = int(message["pid"])
                try:  # the warden, its parent, reaps it only after this: the pid is still the host's
                    process.pidfd = os.pidfd_open(process.pid)
                except OSError:
                    process.pidfd = None  # already gone: the warden's stdin closing is enough
                return

    # -- messages ---------------------------------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        process = self._process
        assert process is not None and process.channel is not None
        if self._released:
            taken, self._released[:] = list(self._released), []
            message["rel"] = taken
        body, fds = self._codec.encode(message)
        try:
            process.channel.send(body, fds)
        except wire.Closed:
            pass  # the host is gone: the receive that follows says how
        finally:
            for fd in fds:
                os.close(fd)

    def _receive(self, process: _Process, deadline: float | None, doing: str,
                 interruptible: bool = False) -> dict:
        assert process.channel is not None
        while True:
            timeout = 0.05
            now = time.monotonic()
            if deadline is not None:
                if now >= deadline:
                    process.kill()
                    raise self._fail(f"its host did not start within {self.config.limits.start_timeout_s:g} s")
                timeout = min(timeout, deadline - now)
            if interruptible and self._interrupt_at is not None and now >= self._interrupt_at:
                process.kill()
                raise self._fail(f"its host did not stop within {self.config.limits.interrupt_grace_s:g} s of the "
                                 f"interrupt while {doing}; it was killed", HostInterrupted)
            try:
                ready, _, _ = select.select([process.channel], [], [], timeout)
            except (OSError, ValueError):  # close() from another thread closed the socket under this call
                raise self._fail(f"its host was closed while {doing}") from None
            if not ready:
                if process.proc is not None and process.proc.poll() is not None:
                    process.dead = True
                    raise self._fail(f"its host died ({process.cause()}) while {doing}")
                continue
            try:
                body, fds = process.channel.recv()
                message = self._codec.decode(body, fds)
            except wire.Closed:
                process.kill()
                raise self._fail(f"its host died ({process.cause()}) while {doing}") from None
            except wire.WireError as exc:
                process.kill()
                raise self._fail(f"its host broke the protocol while {doing} ({exc}); it was killed") from None
            if not isinstance(message, dict):
                process.kill()
                raise self._fail(f"its host broke the protocol while {doing}; it was killed")
            if "rel" in message:
                self._release_lent(message.pop("rel"))
            return message

    def _request(self, message: dict, node: str, on_event: Callable | None) -> Any:
        process = self._process
        assert process is not None
        doing = f"running {node}" if message.get("op") == "call" else f"reading {node}'s inputs"
        self._next_id += 1
        rid = message["id"] = self._next_id
        try:
            self._send(message)
        except (TypeError, ValueError) as exc:
            raise self._fail(f"{node} cannot be given that input: {exc}") from None
        except wire.WireError as exc:
            raise self._fail(f"{node}'s inputs cannot cross: {exc}") from None
        while True:
            answer = self._receive(process, None, doing, interruptible=True)
            op = answer.get("op")
            if op == "reply":
                if answer.get("id") != rid:
                    process.kill()
                    raise self._fail(f"its host broke the protocol while {doing}; it was killed")
                error = answer.get("error")
                if isinstance(error, dict):
                    raise self._node_error(node, error)
                return answer.get("value")
            if op == "event":
                if on_event is not None:
                    try:
                        on_event(str(answer.get("kind")), answer.get("data"))
                    except Exception:  # noqa: BLE001 - an event handler's bug must not fail the node
                        log.exception("pack %s: the event handler failed", self.name)
            elif op in ("rcall", "rgetattr"):
                self._serve_remote(answer)
            else:
                process.kill()
                raise self._fail(f"its host sent {op!r} while {doing}; it was killed")

    def _node_error(self, node: str, error: dict) -> PackHostError:
        kind = error.get("kind")
        message = _first_line(error.get("message"))
        if kind == "trust":
            detail = message if message.startswith("it ") else f"it uses {message}"
            return TrustRequired(f"pack {self.name!r} must be trusted to run: {detail}")
        if kind == "interrupted":
            return self._fail(f"{node} was interrupted", HostInterrupted)
        if kind == "memory":
            limit = self.config.limits.memory_bytes / GiB
            return self._fail(f"{node} ran out of memory (the host's limit is {limit:g} GiB)")
        if kind == "file-size":
            return self._fail(f"{node} wrote a file past the host's limit of "
                              f"{self.config.limits.file_size_bytes / GiB:g} GiB")
        type_name = str(error.get("type") or "Exception")
        module = str(error.get("module") or "")
        return NodeError(f"pack {self.name!r}: {node} raised {type_name}: {message}", type_name,
                         str(error.get("traceback") or ""), remote_message=message,
                         remote_type=f"{module}.{type_name}" if module else type_name)

    def _serve_remote(self, request: dict) -> None:
        """The host calls a method of a value lent to it: run it here if the policy allows, answer either way."""
        rid = request.get("id")
        target = request.get("obj")
        method = str(request.get("method"))
        entry = self._lent.get(self._lent_of.get(id(target), -1))
        kind = entry[2] if entry is not None and entry[0] is target else None
        if kind is None or self.exports is None or not self.exports.allowed(kind, method):
            what = f"{kind or type(target).__name__}.{method}"
            self._answer(rid, error={"type": "TrustRequired", "kind": "trust", "message": f"it uses {what}",
                                     "uses": what, "traceback": ""})
            return
        try:
            if request.get("op") == "rgetattr":
                value = getattr(target, method)
            else:
                args = request.get("args") or ()
                kwargs = request.get("kwargs") or {}
                value = getattr(target, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the host gets the error as its own exception
            self._answer(rid, error={"type": type(exc).__name__, "kind": "error", "traceback": "",
                                     "message": f"{kind}.{method} raised {type(exc).__name__}: {exc}"[:2000],
                                     "uses": ""})
            return
        self._answer(rid, value=value)

    def _answer(self, rid: Any, value: Any = None, error: dict | None = None) -> None:
        try:
            self._send({"op": "reply", "id": rid, **({"error": error} if error else {"value": value})})
        except (TypeError, ValueError, wire.WireError) as exc:
            self._send({"op": "reply", "id": rid, "error": {"type": type(exc).__name__, "kind": "error",
                                                            "message": f"the result cannot cross: {exc}",
                                                            "traceback": "", "uses": ""}})

    # -- values -----------------------------------------------------------------------------------------------------

    def _other(self, value: Any) -> tuple:
        if isinstance(value, HostValue):
            owner = value._owner()
            if owner is not self:
                raise wire.WireError(f"a {value.type_name} made by pack {value.pack!r} cannot be given to pack "
                                     f"{self.name!r}: a pack's own values stay in its host")
            if value.generation != self._generation:
                raise wire.WireError(f"a {value.type_name} from pack {self.name!r}'s earlier host, which has since "
                                     "stopped, is gone")
            return ("H", value.id, value.type_name, value.generation)
        kind = self.exports.kind_of(value) if self.exports is not None else None
        if not kind:
            allowed = "None, bool, int, float, str, bytes, lists, tuples, dicts, tensors, numpy arrays"
            raise TypeError(f"a {type(value).__qualname__} cannot cross to a pack host (only {allowed}, values of "
                            "the pack's own and the kinds Hearth lends)")
        rid = self._lent_of.get(id(value))
        if rid is None or self._lent.get(rid, [None])[0] is not value:
            self._next_lent += 1
            rid = self._next_lent
            self._lent[rid] = [value, 0, kind]
            self._lent_of[id(value)] = rid
        self._lent[rid][1] += 1
        return ("R", rid, kind)

    def _handle(self, tag: str, fields: tuple) -> Any:
        if tag == "H":
            hid, type_name, generation = fields
            value = HostValue(self.name, hid, type_name, generation, self)
            weakref.finalize(value, _release_later, weakref.ref(self), hid, generation)
            return value
        rid, _kind = fields
        entry = self._lent.get(rid)
        if entry is None:
            raise wire.WireError(f"the host named a value of Hearth's (#{rid}) it was never lent")
        return entry[0]

    def _release_lent(self, ids: Any) -> None:
        for rid in ids if isinstance(ids, list) else ():
            entry = self._lent.get(rid)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._lent[rid]
                    self._lent_of.pop(id(entry[0]), None)


def _release_later(owner_ref: weakref.ref, hid: int, generation: int) -> None:
    owner = owner_ref()
    if owner is not None and owner._generation == generation:
        owner._released.append(hid)


def _set_flag(process: _Process, value: int) -> None:
    flag = process.flag
    if flag is not None:
        try:
            flag[0] = value
        except ValueError:
            pass


def _first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0][:500] if lines else ""


def _log_stderr(name: str, process: _Process) -> None:
    proc = process.proc
    if proc is None or proc.stderr is None:
        return
    # A bounded read: a pack writing gigabytes without a newline must not make Hearth's process hold them.
    for raw in iter(lambda: proc.stderr.readline(_MAX_OUTPUT_LINE), b""):
        line = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", raw.decode("utf-8", "replace").rstrip())
        if line:
            process.stderr_tail.append(line)
            # What a pack prints is seen where an in-process pack's print would be, on Hearth's stderr, marked with
            # the pack's name and with control characters (terminal escapes) replaced; also logged, for servers.
            log.debug("pack %s: %s", name, line)
            try:
                sys.stderr.write(f"[pack {name}] {line}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass


def _under_hidden(path: str) -> bool:
    home = os.path.expanduser("~")
    return any(path == h or path.startswith(h.rstrip("/") + "/") for h in (*HIDDEN, home))


def _python_paths(config: HostConfig) -> list[str]:
    """Folders the host's Python needs that would otherwise be hidden (a Python under HOME, say): its prefixes,
    this process's import path, Hearth itself, and the entry's top-level package."""
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), HEARTH_ROOT]
    found += [p for p in sys.path if p and os.path.isdir(p)]
    top = config.entry.partition(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        for location in spec.submodule_search_locations or ([spec.origin] if spec.origin else []):
            found.append(os.path.dirname(location))
    home = os.path.realpath(os.path.expanduser("~"))
    tops = {os.path.realpath(h) for h in (*HIDDEN, home)}
    result: list[str] = []
    for path in sorted({os.path.realpath(p) for p in found}, key=len):
        # Never HOME itself, a folder above it or a hidden folder whole (a script started from HOME puts HOME
        # on sys.path): only what lies inside them.
        if path in tops or home.startswith(path.rstrip("/") + "/") or not _under_hidden(path):
            continue
        if not any(path.startswith(r.rstrip("/") + "/") for r in result):
            result.append(path)
    return result
