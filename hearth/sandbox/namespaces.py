"""Linux isolation primitives shared by the one-shot import sandbox (:mod:`hearth.sandbox.worker`) and the long-lived
pack host (:mod:`hearth.sandbox.host_worker`): unshare, id maps, read-only root, tmpfs, bind mounts, rlimits,
capabilities and ``no_new_privs``.

Standard library only, and importable two ways: as ``hearth.sandbox.namespaces`` and, from the child scripts that
run as ``python -I -B worker.py`` (their own folder first on ``sys.path``), as plain ``namespaces``. Nothing here
runs pack code; every function reports failure instead of pretending.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x1000, 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 1, 24, 38, 47, 4
SYS_MOUNT_SETATTR = 442  # the same number on every architecture that has the call
MOUNT_ATTR_RDONLY, AT_RECURSIVE, AT_FDCWD = 0x1, 0x8000, -100
_CAPABILITY_VERSION_3 = 0x20080522
PID_MAX_FLOOR = 301  # the smallest pid_max the kernel accepts

NAMESPACES = ("user", "net", "pid", "mount", "ipc", "uts")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def errno_text() -> str:
    return os.strerror(ctypes.get_errno())


_HINTS = ("check that the kernel allows unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
          "user.max_user_namespaces > 0, kernel.apparmor_restrict_unprivileged_userns=0) or that no container "
          "policy (seccomp, AppArmor) forbids unshare")


def unshare(network: bool = False) -> tuple[list[str], str | None]:
    """Enter new user, pid, mount, IPC, UTS and (unless ``network``) network namespaces.

    Returns the names of the namespaces entered, or ``([], reason)`` when isolation is impossible here. Without
    user namespaces but with the privilege to unshare the rest (real root), that is done instead.
    """
    uid, gid = os.getuid(), os.getgid()
    base = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (0 if network else CLONE_NEWNET)
    names = [n for n in NAMESPACES if n != "net" or not network]
    if _libc.unshare(base | CLONE_NEWUSER) == 0:
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as fh:
                    fh.write(text)
        except OSError as exc:
            return [], f"cannot map ids in the user namespace: {exc}"
        return names, None
    first = errno_text()
    if _libc.unshare(base) == 0:  # privileged, but user namespaces are disabled
        return [n for n in names if n != "user"], None
    return [], unshare_failure(first, errno_text())


def unshare_failure(user_error: str, plain_error: str) -> str:
    """The one-line reason given when neither unshare works: what failed, with both errors, and what to check."""
    return (f"cannot create the namespaces isolation needs: unshare(CLONE_NEWUSER) failed: {user_error}; "
            f"without a user namespace: {plain_error}; {_HINTS}")


def loopback_only() -> str | None:
    """None when the only network interface is ``lo``; else why not."""
    import socket

    interfaces = sorted(name for _, name in socket.if_nameindex())
    return None if interfaces == ["lo"] else f"network namespace still shows {interfaces}"


def readonly_root() -> bool:
    """Make every mount of this mount namespace read-only and private (recursively)."""
    return setattr_mount("/", readonly=True, recursive=True, private=True)


def setattr_mount(path: str, *, readonly: bool, recursive: bool, private: bool = False) -> bool:
    attr = _MountAttr(MOUNT_ATTR_RDONLY if readonly else 0, 0 if readonly else MOUNT_ATTR_RDONLY,
                      MS_PRIVATE if private else 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    return _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), flags, ctypes.byref(attr),
                         ctypes.sizeof(attr)) == 0


def mount_tmpfs(path: str, size: int, mode: int = 0o700) -> bool:
    options = f"size={size},mode={mode:o}".encode()
    return _libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) == 0


def bind(source: str, target: str) -> bool:
    """Bind ``source`` (a path, or ``/proc/self/fd/N`` of an ``O_PATH`` descriptor) onto ``target``, recursively."""
    return _libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None) == 0


def mount_proc() -> bool:
    """A /proc that shows only this pid namespace, in a mount namespace of its own (the caller's keeps its /proc)."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        return False
    return _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV, None) == 0


def set_pid_max(max_processes: int) -> None:
    try:
        with open("/proc/sys/kernel/pid_max", "w") as fh:  # per-namespace on recent kernels
            fh.write(str(max(PID_MAX_FLOOR, max_processes)))
    except OSError:
        pass


def set_rlimits(limits: dict[str, int]) -> None:
    """``limits``: resource name (``"RLIMIT_AS"``) to value; soft and hard both set (``RLIMIT_CPU``: hard + 2, so
    SIGXCPU comes first and the cause is visible)."""
    for name, value in limits.items():
        hard = value + 2 if name == "RLIMIT_CPU" else value
        resource.setrlimit(getattr(resource, name), (value, hard))


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def drop_privileges() -> None:
    """Empty the bounding, ambient, inheritable, permitted and effective sets; set ``no_new_privs``."""
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    # Root keeps inheritable capabilities across exec even with an empty bounding set: clear them all.
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    _libc.capset(ctypes.byref(header), ctypes.byref((ctypes.c_uint32 * 6)()))
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError("no_new_privs refused")


def privileges_left() -> str | None:
    """Why this process is not safe to run pack code in, or None: checked, not assumed."""
    with open("/proc/self/status") as fh:
        status = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
    for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        if int(status.get(field, "0").strip() or "0", 16):
            return f"{field} is {status[field].strip()} after dropping capabilities"
    if status.get("NoNewPrivs", "0").strip() != "1":
        return "no_new_privs is not set"
    return None


# -- seccomp: no Unix-domain sockets --------------------------------------------------------------------------------

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_SECCOMP_RET_KILL_PROCESS, _SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGE_K, _BPF_RET_K = 0x20, 0x15, 0x35, 0x06
_X32_SYSCALL_BIT = 0x40000000
AF_UNIX = 1
# machine -> (audit arch, socket, [denied outright: io_uring_setup, add_key, request_key, keyctl])
_ARCHES = {"x86_64": (0xC000003E, 41, (425, 248, 249, 250)), "aarch64": (0xC00000B7, 198, (425, 217, 218, 219))}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def deny_unix_sockets() -> str | None:
    """Install a seccomp filter: ``socket(AF_UNIX, ...)``, ``io_uring_setup`` and the kernel keyring calls
    (``add_key``, ``request_key``, ``keyctl``) fail with EACCES; a syscall of another ABI (32-bit, x32) kills the
    process. None when installed; else why not.

    A network namespace does not stop ``connect()`` to a Unix socket in the file system (a read-only mount does
    not either): docker.sock, a database or an agent socket under /run would be a way out. ``socketpair`` (how
    asyncio and multiprocessing pipes talk) still works. Keyrings belong to the user, not to a namespace: the
    session keyring a process inherits holds Kerberos tickets and tokens. io_uring would do socket calls past this
    filter. Needs ``no_new_privs``; lasts across exec and fork.
    """
    import platform

    arch = _ARCHES.get(platform.machine())
    if arch is None:
        return f"no seccomp filter for {platform.machine()}"
    audit_arch, nr_socket, denied = arch
    n = len(denied)
    # Layout: 0 arch, 1-2 check, 3 nr, 4 x32, 5..5+n-1 denied numbers, then socket, domain, allow, deny.
    at_socket = 5 + n
    allow, deny = at_socket + 3, at_socket + 4
    program = [
        (_BPF_LD_W_ABS, 0, 0, 4),  # arch
        (_BPF_JEQ_K, 1, 0, audit_arch),  # ours: skip the kill
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_KILL_PROCESS),
        (_BPF_LD_W_ABS, 0, 0, 0),  # syscall number
        (_BPF_JGE_K, deny - 5, 0, _X32_SYSCALL_BIT),  # x32 ABI
        *[(_BPF_JEQ_K, deny - (6 + i), 0, nr) for i, nr in enumerate(denied)],
        (_BPF_JEQ_K, 0, allow - (at_socket + 1), nr_socket),  # socket: look at the domain; else allow
        (_BPF_LD_W_ABS, 0, 0, 16),  # args[0], low 32 bits
        (_BPF_JEQ_K, deny - (at_socket + 3), 0, AF_UNIX),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO | 13),  # EACCES
    ]
    assert len(program) == deny + 1
    filters = (_SockFilter * len(program))(*[_SockFilter(*step) for step in program])
    prog = _SockFprog(len(program), filters)
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"cannot install the seccomp filter: {errno_text()}"
    return None
