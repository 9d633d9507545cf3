"""The child side of a pack host: run as a script (``python -I -B host_worker.py MODE CONFIG``), never imported.

``probe``   Can this machine make the namespaces? Unshare as the warden would, in a throw-away process; one JSON line.
``warden``  Our own code, started by :class:`hearth.sandbox.host.PackHost`. It unshares user, pid, mount, IPC, UTS
            and (unless the pack may use the network) network namespaces, makes every mount read-only, gives the
            host its own /dev (null, zero, full, random, urandom and the GPU compute nodes: no terminals, no
            disks), hides the user's HOME, /root, /home, /tmp, /var/tmp, /dev/shm, /run/user and /run/secrets
            behind empty tmpfs, re-exposes Python's own folders and the config's ``readable`` folders read-only
            and ``writable`` read-write, then forks the host as pid 1 of the new pid namespace. It writes
            ``{"pid": N}`` (the host's pid as Hearth sees it) and, when the host ends, how it ended, as JSON lines
            on stdout. It watches its stdin: when Hearth's process goes away the pipe closes and the warden kills
            the host; killing pid 1 makes the kernel kill every process of the namespace. (Not PR_SET_PDEATHSIG for
            the warden: that fires when the *thread* that started it exits, and hosts start from worker threads.)
``host``    pid 1 of the namespace, exec'd fresh with rlimits (its pid namespace's pid_max bounds processes even for
            the real root user), no capabilities, ``no_new_privs``, a seccomp filter (no Unix-domain sockets, no
            io_uring, no kernel keyrings), PR_SET_PDEATHSIG to the warden, only PATH, HOME, TMPDIR and LANG in its
            environment, stdout sent to stderr. It receives the entry over the socket (fd 3), imports and calls
            it, describes the nodes, then serves calls until the socket closes.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys

SOCK_FD, FLAG_FD = 3, 4
HIDDEN = ("/root", "/home", "/tmp", "/var/tmp", "/dev/shm", "/run/user", "/run/secrets")
HOST_HOME = "/tmp/home"
_SMALL_TMPFS = 16 * 1024 * 1024


def _out(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _namespaces():  # noqa: ANN202 - the sibling module, loaded by its path (no package import in the warden)
    import importlib.util

    module = sys.modules.get("hearth_host_namespaces")
    if module is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "namespaces.py")
        spec = importlib.util.spec_from_file_location("hearth_host_namespaces", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


# -- probe ----------------------------------------------------------------------------------------------------------


def probe(config: dict) -> int:
    ns = _namespaces()
    names, reason = ns.unshare(network=bool(config.get("network")))
    if reason:
        _out({"available": False, "reason": reason})
        return 0
    if not ns.readonly_root():
        _out({"available": False, "reason": f"cannot make the root read-only (mount_setattr): {ns.errno_text()}"})
        return 0
    if not ns.mount_tmpfs("/tmp", _SMALL_TMPFS):
        _out({"available": False, "reason": f"cannot mount a tmpfs: {ns.errno_text()}"})
        return 0
    ns.drop_privileges()
    problem = ns.deny_unix_sockets()
    if problem:
        _out({"available": False, "reason": problem})
        return 0
    _out({"available": True, "reason": "", "namespaces": names})
    return 0


# -- warden ---------------------------------------------------------------------------------------------------------


def warden(config: dict) -> int:
    ns = _namespaces()
    names, reason = ns.unshare(network=bool(config["network"]))
    if reason:
        _out({"failed": reason})
        return 3
    # Descriptors of everything to re-expose, opened in the new mount namespace (a
    # bind mount's source must be one of its mounts) before anything is hidden.
    exposures: list[tuple[str, int, bool]] = []
    for path, writable in [(p, False) for p in config["python_paths"] + config["readable"]] + \
                          [(p, True) for p in config["writable"]]:
        real = os.path.realpath(path)
        try:
            fd = os.open(real, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # not there: nothing to expose
        exposures.append((real, fd, writable))
    if not config["network"]:
        problem = ns.loopback_only()
        if problem:
            _out({"failed": problem})
            return 3
    if not ns.readonly_root():
        _out({"failed": f"cannot make the root read-only (mount_setattr): {ns.errno_text()}"})
        return 3
    problem = _private_dev(ns)
    if problem:
        _out({"failed": problem})
        return 3
    home = os.path.realpath(config["home"] or "/")
    hidden = sorted({*HIDDEN, *([home] if home != "/" else [])}, key=len)
    for folder in hidden:
        if os.path.isdir(folder) and not os.path.islink(folder):
            size = config["tmp_bytes"] if folder in ("/tmp", "/dev/shm") else _SMALL_TMPFS
            if not ns.mount_tmpfs(folder, size, 0o755 if folder == "/tmp" else 0o700):
                _out({"failed": f"cannot hide {folder} behind a tmpfs: {ns.errno_text()}"})
                return 3
    problems, fatal = [], []
    # Parents before children, read-only before read-write: a writable folder inside a readable one stays writable.
    for real, fd, writable in sorted(exposures, key=lambda e: (len(e[0]), e[2])):
        try:
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(real, exist_ok=True)
            elif not os.path.exists(real):
                os.makedirs(os.path.dirname(real), exist_ok=True)
                open(real, "a").close()
        except OSError as exc:
            (fatal if writable else problems).append(f"cannot expose {real}: {exc.strerror}")
            continue
        if not ns.bind(f"/proc/self/fd/{fd}", real):
            (fatal if writable else problems).append(f"cannot expose {real}: {ns.errno_text()}")
            continue
        if not ns.setattr_mount(real, readonly=not writable, recursive=not writable):
            fatal.append(f"cannot make {real} {'writable' if writable else 'read-only'}: {ns.errno_text()}")
    if fatal:
        _out({"failed": "; ".join(fatal)})
        return 3
    os.makedirs(HOST_HOME, mode=0o700, exist_ok=True)
    # The hiding tmpfs (but the temporary folders) become read-only too: nothing is planted in a fake HOME.
    for folder in [*hidden, "/dev"]:
        if folder not in ("/tmp", "/var/tmp", "/dev/shm") and os.path.isdir(folder):
            ns.setattr_mount(folder, readonly=True, recursive=False)
    for _, fd, _ in exposures:
        os.close(fd)
    pid = os.fork()
    if pid == 0:
        try:
            _exec_host(config)
        except BaseException as exc:  # noqa: BLE001 - said on stderr, which Hearth logs
            sys.stderr.write(f"the host could not start: {type(exc).__name__}: {exc}\n")
            sys.stderr.flush()
        finally:
            os._exit(127)
    _out({"pid": pid, "namespaces": names, "problems": problems})
    os.close(config["sock_fd"])
    os.close(config["flag_fd"])
    return _watch(pid)


# The devices a host gets: the harmless ones, and GPU compute nodes (NVIDIA, DRM render nodes, AMD's kfd). Not the
# disks (the real root user's processes could read them raw), the terminals (/dev/pts: what the user types) or the
# rest of /dev.
DEVICES = ("null", "zero", "full", "random", "urandom")
GPU_DEVICES = ("nvidia*", "dri/renderD*", "kfd")


def _private_dev(ns) -> str | None:  # noqa: ANN001 - the namespaces module
    """A tmpfs on /dev holding only :data:`DEVICES` and the GPU nodes (bound from the real ones), /dev/shm, and
    the usual links into /proc/self/fd; read-only after. None when done; else why not."""
    import glob

    names = [d for d in DEVICES if os.path.exists(f"/dev/{d}")]
    for pattern in GPU_DEVICES:
        names += [p[len("/dev/"):] for p in glob.glob(f"/dev/{pattern}")]
    sources = []
    for name in names:
        try:
            sources.append((name, os.open(f"/dev/{name}", os.O_PATH | os.O_CLOEXEC)))
        except OSError:
            continue
    try:
        if not ns.mount_tmpfs("/dev", _SMALL_TMPFS, 0o755):
            return f"cannot give the host its own /dev: {ns.errno_text()}"
        for name, fd in sources:
            target = f"/dev/{name}"
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "w").close()
            if not ns.bind(f"/proc/self/fd/{fd}", target):
                return f"cannot expose {target}: {ns.errno_text()}"
        os.mkdir("/dev/shm")
        os.mkdir("/dev/pts")
        os.symlink("/proc/self/fd", "/dev/fd")
        for number, name in enumerate(("stdin", "stdout", "stderr")):
            os.symlink(f"/proc/self/fd/{number}", f"/dev/{name}")
        return None
    finally:
        for _, fd in sources:
            os.close(fd)


def _watch(pid: int) -> int:
    """Wait for the host to end, or for Hearth's process to go away (stdin closes): then kill the host."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    watched = [0] + ([pidfd] if pidfd is not None else [])
    while True:
        ready, _, _ = select.select(watched, [], [], None if pidfd is not None else 0.2)
        if 0 in ready and not os.read(0, 4096):
            os.kill(pid, signal.SIGKILL)
            watched = [pidfd] if pidfd is not None else []
            if not watched:
                break
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
    if not done:
        _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    _out({"exit_code": code, "max_rss_kib": usage.ru_maxrss, "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)})
    return 0


def _exec_host(config: dict) -> None:
    """In the forked pid 1: tighten everything that can be tightened, then exec the host."""
    ns = _namespaces()
    limits = config["limits"]
    ns.mount_proc()
    # The pid namespace's own pid_max bounds its processes even for the real root user, whom RLIMIT_NPROC does not
    # bind. Once pids wrap, the kernel hands out only those from 300 up: 300 + max_processes keeps max_processes
    # for a host that lives long and starts many processes in turn.
    ns.set_pid_max(300 + limits["max_processes"] + 1)
    ns.set_rlimits({"RLIMIT_AS": limits["memory_bytes"], "RLIMIT_FSIZE": limits["file_size_bytes"],
                    "RLIMIT_NOFILE": limits["open_files"], "RLIMIT_NPROC": limits["max_processes"],
                    "RLIMIT_CORE": 0})
    ns.die_with_parent()
    ns.drop_privileges()
    problem = ns.deny_unix_sockets()
    if problem:
        raise OSError(problem)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # pack output goes to stderr, which Hearth logs with the pack's name
    high_sock, high_flag = os.dup(config["sock_fd"]), os.dup(config["flag_fd"])
    os.dup2(high_sock, SOCK_FD)
    os.dup2(high_flag, FLAG_FD)
    os.closerange(FLAG_FD + 1, 65536)
    os.chdir(HOST_HOME)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": HOST_HOME, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    argv = [sys.executable, "-I", "-B", os.path.abspath(__file__), "host", json.dumps(config)]
    os.execve(sys.executable, argv, env)


# -- host (pack code runs here) -------------------------------------------------------------------------------------


def host(config: dict) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    # This script's folder holds modules named like common ones (files, names...): never importable by a pack.
    sys.path[:] = [p for p in sys.path if p not in ("", here)]
    if config["hearth_root"] not in sys.path:
        sys.path.append(config["hearth_root"])
    from hearth.sandbox import host_runtime

    return host_runtime._serve(config)


def main(argv: list[str]) -> int:
    mode, config = argv[1], json.loads(argv[2])
    if mode == "warden":
        return warden(config)
    if mode == "probe":
        return probe(config)
    if mode == "host":
        return host(config)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
