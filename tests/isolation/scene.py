"""The stage for the attack tests: a user's home with a (test) private key, a registry token and a .netrc; secrets
in the environment and in the session keyring; the user's terminal (a pty) with a password typed into it; listeners
on the loopback and on Unix sockets; folders a pack must not write to; and the hostile pack in a custom_nodes folder.

Both attack modules (through ``comfy run`` and through ``comfy serve``) build one :class:`Scene` each and run the
real ``comfy`` command as a subprocess in it: the isolation under test is the CLI's default, not a fixture's.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import platform
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.packs import pyproject

REPO = Path(__file__).resolve().parents[2]
PACK_SOURCE = Path(__file__).resolve().parent / "hostile_pack"
PACK = "hostile-pack"
LAUNCH = "import sys; from hearth.cli.main import main; sys.exit(main(sys.argv[1:]))"
# What the pack host's environment may hold (contract B), and the variable CPython's C-locale coercion adds.
# THP_MEM_ALLOC_ENABLE is not passed in: the worker sets it itself when it imports hearth (huge pages for tensors).
ALLOWED_ENV = {"PATH", "HOME", "TMPDIR", "LANG", "LC_CTYPE", "THP_MEM_ALLOC_ENABLE"}


class Listener:
    """Listeners in the test process -- TCP on 127.0.0.1, and Unix-domain sockets at ``unix_paths`` -- recording
    every connection they accept with what was sent."""

    def __init__(self, unix_paths: tuple[Path, ...] = ()) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.unix_paths = list(unix_paths)
        self.sockets = [self.sock]
        for path in self.unix_paths:
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.bind(str(path))
            unix.listen()
            self.sockets.append(unix)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="attack-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select(self.sockets, [], [], 0.2)
            for listening in ready:
                try:
                    conn, _ = listening.accept()
                except OSError:
                    continue
                with conn:
                    conn.settimeout(2)
                    chunks = []
                    try:
                        while chunk := conn.recv(65536):
                            chunks.append(chunk)
                    except OSError:
                        pass
                    self.received.append(b"".join(chunks))

    def saw(self, payload: str, timeout: float = 0.0) -> bool:
        """Whether a connection sent ``payload``; ``timeout``: how long to wait for one still being read (for a
        connection that should have happened -- one that was refused has nothing in flight)."""
        deadline = time.monotonic() + timeout
        while True:
            if any(payload.encode() in data for data in self.received):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for listening in self.sockets:
            listening.close()
        for path in self.unix_paths:
            path.unlink(missing_ok=True)


def unix_socket_paths(scene_root: Path) -> tuple[Path, ...]:
    """Where the Unix-socket attack finds a service: /run, where system services put theirs (docker.sock, a
    local PostgreSQL, the D-Bus system bus) when this user may create one there, and the input folder, which a
    pack host shows read-only (read-only does not stop a connect)."""
    paths = [scene_root / "input" / "service.sock"]
    if os.access("/run", os.W_OK):
        paths.insert(0, Path("/run") / f"hearth-attack-{uuid.uuid4().hex[:12]}.sock")
    return tuple(paths)


# add_key(2) and keyctl(2) by number (x86_64, aarch64): the standard library has no binding.
KEY_SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}
KEYCTL_JOIN_SESSION_KEYRING, KEY_SPEC_SESSION_KEYRING = 1, -3
KEY_DESCRIPTION = "hearth-attack-key"


def session_keyring_with(secret: str) -> Callable[[], None]:
    """A ``preexec_fn``: the child joins a new anonymous session keyring holding ``secret`` (as a user logged in
    with Kerberos or ecryptfs has keys there), so the test's own keyrings are never touched."""

    def setup() -> None:
        numbers = KEY_SYSCALLS.get(platform.machine())
        if numbers is None:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        if libc.syscall(numbers[1], KEYCTL_JOIN_SESSION_KEYRING, ctypes.c_char_p(None)) >= 0:
            payload = secret.encode()
            libc.syscall(numbers[0], b"user", KEY_DESCRIPTION.encode(), payload, len(payload),
                         KEY_SPEC_SESSION_KEYRING)

    return setup


@functools.cache
def keyrings_work() -> bool:
    """Whether a child given a session keyring by :func:`session_keyring_with` can read its key back (kernels and
    container policies may refuse keyrings); the keyring attack is only meaningful where it can."""
    probe = ("import ctypes, platform, sys; n = {'x86_64': 250, 'aarch64': 219}[platform.machine()]; "
             "libc = ctypes.CDLL(None); libc.syscall.restype = ctypes.c_long; "
             f"k = libc.syscall(n, 10, -3, b'user', {KEY_DESCRIPTION.encode()!r}, 0); "
             "b = ctypes.create_string_buffer(64); s = libc.syscall(n, 11, k, b, 64) if k >= 0 else -1; "
             "sys.stdout.write(b.raw[:s].decode() if s >= 0 else '')")
    if platform.machine() not in KEY_SYSCALLS:
        return False
    result = subprocess.run([sys.executable, "-c", probe], preexec_fn=session_keyring_with("probe-secret"),
                            capture_output=True, text=True, timeout=30)
    return result.stdout == "probe-secret"


@dataclass
class Scene:
    root: Path

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.custom_nodes = self.root / "custom_nodes"
        self.pack = self.custom_nodes / PACK
        self.input = self.root / "input"
        self.models = self.root / "models"
        self.output = self.root / "output"
        token = uuid.uuid4().hex
        # Distinct, greppable secrets: a report or a file that holds one of these got it from where it must not.
        self.ssh_key = f"-----BEGIN OPENSSH PRIVATE KEY-----\nssh-secret-{token}\n-----END OPENSSH PRIVATE KEY-----\n"
        self.registry_token = f"registry-token-{token}"
        self.netrc_password = f"netrc-secret-{token}"
        self.keyring_secret = f"keyring-secret-{token}"
        self.env_secrets = {"HEARTH_TEST_API_TOKEN": f"api-token-{token}",
                            "AWS_SECRET_ACCESS_KEY": f"aws-secret-{token}",
                            "GITHUB_TOKEN": f"ghp-{token}", "HF_TOKEN": f"hf-{token}"}
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "id_test").write_text(self.ssh_key)
        (self.home / ".ssh" / "id_test").chmod(0o600)
        # Where `comfy login` keeps registry tokens (hearth/registry/config.py): Hearth reads no token variable.
        (self.home / ".config" / "hearth").mkdir(parents=True)
        (self.home / ".config" / "hearth" / "config.toml").write_text(
            f'[[registries]]\nurl = "http://127.0.0.1:9"\ntoken = "{self.registry_token}"\n')
        (self.home / ".netrc").write_text(f"machine example.com login me password {self.netrc_password}\n")
        shutil.copytree(PACK_SOURCE, self.pack, ignore=shutil.ignore_patterns("__pycache__"))
        (self.pack / "pyproject.toml").write_text(pyproject(PACK, publisher="mallory"))
        self.input.mkdir()
        (self.input / "photo.png").write_bytes(b"not really a png")
        (self.models / "checkpoints").mkdir(parents=True)
        (self.models / "checkpoints" / "tiny.safetensors").write_bytes(b"\0")
        self.listener = Listener(unix_socket_paths(self.root))
        self.typed_secret = f"typed-password-{token}"
        # The user's terminal: what they type goes in on the master side, as from a keyboard; the slave stays open
        # here as their shell would hold it.
        try:
            self.terminal, self.terminal_slave = os.openpty()
            self.terminal_path = os.ttyname(self.terminal_slave)
        except OSError:
            self.terminal, self.terminal_slave, self.terminal_path = -1, -1, ""

    @property
    def secrets(self) -> list[str]:
        return [self.ssh_key.splitlines()[1], self.registry_token, self.netrc_password, self.keyring_secret,
                self.typed_secret, *self.env_secrets.values()]

    def user_types(self) -> None:
        """The user types a password into their terminal (before a run: it waits there to be read)."""
        if self.terminal >= 0:
            os.write(self.terminal, f"{self.typed_secret}\n".encode())

    def terminal_shows(self) -> str:
        """What has been written to the user's terminal (the echo of what they typed, and anything injected)."""
        shown = b""
        while self.terminal >= 0 and select.select([self.terminal], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.terminal, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        return shown.decode(errors="replace")

    def forbidden_folders(self) -> list[Path]:
        """Where no pack may write: HOME, /tmp, the pack's own folder, the input folder, the models folder and a
        model folder the host shows (read-only)."""
        return [self.home, Path("/tmp"), self.pack, self.input, self.models, self.models / "checkpoints"]

    def env(self, isolation: str | None) -> dict[str, str]:
        """The subprocess environment: the user's (minus Hearth's own settings), a home with secrets, and secret
        variables; ``isolation`` None leaves HEARTH_ISOLATION unset, so the CLI's own default applies."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HEARTH_") and k not in ("COMFY_CONFIG", "XDG_CONFIG_HOME", "XDG_DATA_HOME")}
        env.update(self.env_secrets)
        env.update(HOME=str(self.home), PYTHONPATH=str(REPO), HEARTH_DISABLE_PLUGINS="sd,samplers,lora,video,dit,upscale,audio")
        if isolation is not None:
            env["HEARTH_ISOLATION"] = isolation
        return env

    def folder_args(self) -> list[str]:
        return ["--custom-nodes", str(self.custom_nodes), "--input-dir", str(self.input),
                "--models-dir", str(self.models)]

    def comfy(self, *args: str, isolation: str | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
        """``comfy ARGS`` as a subprocess in this scene (cwd: the scene's root)."""
        return subprocess.run([sys.executable, "-c", LAUNCH, *args], cwd=self.root, env=self.env(isolation),
                              capture_output=True, text=True, timeout=timeout, preexec_fn=self.keyring())

    def keyring(self) -> Callable[[], None]:
        """The ``preexec_fn`` of every ``comfy`` this scene starts: a session keyring holding the scene's secret."""
        return session_keyring_with(self.keyring_secret)

    # -- workflows -------------------------------------------------------------------------------------------

    def attack_prompt(self, tag: str, marker: str) -> dict[str, Any]:
        """The attacks that report what they got and leave their host running, and the honest node, in one prompt
        (one host start). The memory bomb, the crash, the hang and the others that end a run get prompts of their
        own."""
        targets = json.dumps([str(p) for p in self.forbidden_folders()])
        return {
            "1": {"class_type": "HostileReadHome", "inputs": {"home": str(self.home), "tag": tag}},
            "2": {"class_type": "HostileEnvSecrets", "inputs": {"tag": tag}},
            "3": {"class_type": "HostileNetwork", "inputs": {"port": self.listener.port,
                                                             "payload": f"stolen-{tag}", "tag": tag}},
            "7": {"class_type": "HostileUnixSocket", "inputs": {
                "paths": json.dumps([str(p) for p in self.listener.unix_paths]), "payload": f"unix-{tag}",
                "tag": tag}},
            "8": {"class_type": "HostileKeyring", "inputs": {"description": KEY_DESCRIPTION, "tag": tag}},
            "9": {"class_type": "HostileTerminal", "inputs": {"path": self.terminal_path, "tag": tag}},
            "10": {"class_type": "HostileUnshare", "inputs": {"home": str(self.home), "input": str(self.input),
                                                              "marker": marker, "tag": tag}},
            "4": {"class_type": "HostileWrite", "inputs": {"targets": targets, "marker": marker, "tag": tag}},
            "5": {"class_type": "HostileSpawn", "inputs": {"marker": marker, "tag": tag}},
            "6": {"class_type": "HostileHonest", "inputs": {"text": "hearth", "times": 2, "tag": tag}},
        }

    @staticmethod
    def memory_prompt(tag: str) -> dict[str, Any]:
        return {"1": {"class_type": "HostileMemory", "inputs": {"gib": 64, "touch_mib": 1024, "tag": tag}}}

    @staticmethod
    def honest_prompt(tag: str) -> dict[str, Any]:
        return {"1": {"class_type": "HostileHonest", "inputs": {"text": "hearth", "times": 2, "tag": tag}}}

    def write_workflow(self, name: str, prompt: dict[str, Any]) -> Path:
        path = self.root / f"{name}.json"
        path.write_text(json.dumps(prompt))
        return path

    def report(self, kind: str, tag: str, output: Path | None = None) -> dict[str, Any]:
        """The report an attack node wrote to the output folder."""
        path = (output or self.output) / f"attack-{kind}-{tag}.json"
        assert path.is_file(), f"{kind} node wrote no report {path}; output folder: {sorted(os.listdir(path.parent))}"
        return json.loads(path.read_text())

    def dropped_files(self, marker: str) -> list[Path]:
        """Files the write attack left in the folders it must not write to."""
        return [folder / f"pwned-{marker}.txt" for folder in self.forbidden_folders()
                if (folder / f"pwned-{marker}.txt").exists()]

    def import_drops(self) -> list[Path]:
        """Files the pack's import and its prestartup script left beside custom_nodes/ (they run where it runs)."""
        return [p for p in (self.root / "pwned-at-import.json", self.root / "pwned-at-prestartup.json") if p.exists()]

    def clean(self, marker: str) -> None:
        """Undo what an attack that got through left behind: its dropped files and its processes (where the
        isolation failed, or in the ``--isolation off`` control)."""
        for path in self.dropped_files(marker):
            path.unlink()
        for pid in processes_with(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        self.listener.close()
        if self.terminal >= 0:
            os.close(self.terminal)
            os.close(self.terminal_slave)


HONEST_VALUE = "HTRAEH-HTRAEH"  # HostileHonest("hearth", times=2)


def isolation_missing() -> str:
    """Why this machine cannot make pack hosts ("" where it can): there Hearth refuses untrusted packs instead of
    running them, and the attacks have nothing to attack."""
    from hearth.sandbox.host import isolation_available

    available, reason = isolation_available()
    return "" if available else reason


def new_marker() -> str:
    return f"hearth-attack-{uuid.uuid4().hex}"


def processes_with(marker: str, under: int | None = None) -> list[int]:
    """Ids of the processes on this machine whose command line holds ``marker``; with ``under``, only those
    descending from that process (as far as their parents are still alive to say)."""
    found, parents = [], {}
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if needle in cmdline:
                found.append(int(entry.name))
    if under is None:
        return found

    def descends(pid: int) -> bool:
        seen = set()
        while pid in parents and pid not in seen:
            seen.add(pid)
            pid = parents[pid]
            if pid == under:
                return True
        return False

    return [pid for pid in found if descends(pid)]


def wait_no_process(marker: str, timeout: float = 10.0) -> list[int]:
    """Processes still carrying ``marker`` after up to ``timeout`` seconds (a killed host's children may take a
    moment to be reaped)."""
    deadline = time.monotonic() + timeout
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def leaked(report: dict[str, Any] | str, secrets: list[str]) -> list[str]:
    text = report if isinstance(report, str) else json.dumps(report)
    return [s for s in secrets if s in text]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]
