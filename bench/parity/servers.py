"""Start, drive and stop a ComfyUI or a Hearth server on 127.0.0.1 for the parity harness, watching its memory.

Each server runs in its own process group (so stopping it stops every child), is polled for readiness with a
bounded wait, takes prompts over its HTTP API (``POST /prompt``, then ``GET /history/<id>`` until it is done) and
has its resident memory sampled (psutil, the whole process tree) every 0.1 s while it lives.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

READY_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 900.0


def free_port() -> int:
    """A TCP port nothing on 127.0.0.1 listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerError(RuntimeError):
    """A server that did not start, crashed, or failed a prompt; the message ends with its log's tail."""


@dataclass
class RunResult:
    """One prompt's outcome: wall time from submission to completion, and the error text if it failed."""

    seconds: float
    error: str | None = None


@dataclass
class Server:
    """A running server: its label (``ComfyUI`` / ``Hearth``), port, process and log file."""

    label: str
    port: int
    process: subprocess.Popen
    log: Path
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._watcher = threading.Thread(target=self._watch_memory, daemon=True)
        self._watcher.start()

    def _watch_memory(self) -> None:
        try:
            root = psutil.Process(self.process.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.peak_rss = max(self.peak_rss, total)
            self._stop.wait(0.1)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def get_json(self, path: str, timeout: float = 30.0) -> Any:
        with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
            return json.loads(response.read())

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Seconds until ``/object_info`` answers; raises :class:`ServerError` if the process exits first."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if self.process.poll() is not None:
                raise ServerError(f"{self.label} exited with {self.process.returncode} while starting:\n"
                                  f"{self.log_tail()}")
            try:
                self.get_json("/system_stats", timeout=5.0)
                return time.perf_counter() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(0.5)
        raise ServerError(f"{self.label} did not answer on port {self.port} within {timeout:.0f} s:\n"
                          f"{self.log_tail()}")

    def samplers(self) -> tuple[list[str], list[str]]:
        """The sampler and scheduler names KSampler offers."""
        info = self.get_json("/object_info/KSampler", timeout=120.0)["KSampler"]["input"]["required"]
        return _combo(info["sampler_name"]), _combo(info["scheduler"])

    def run(self, prompt: dict[str, Any], timeout: float = RUN_TIMEOUT_S) -> RunResult:
        """Queue ``prompt`` and wait for it; a rejected or failed prompt is a result with its error, not a raise."""
        body = json.dumps({"prompt": prompt, "client_id": "hearth-parity"}).encode()
        request = urllib.request.Request(self.url("/prompt"), data=body,
                                         headers={"Content-Type": "application/json"})
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60.0) as response:
                prompt_id = json.loads(response.read())["prompt_id"]
        except urllib.error.HTTPError as exc:
            return RunResult(0.0, f"rejected ({exc.code}): {exc.read().decode(errors='replace')[:600]}")
        while time.perf_counter() - start < timeout:
            if self.process.poll() is not None:
                raise ServerError(f"{self.label} died during a prompt:\n{self.log_tail()}")
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            status = (entry or {}).get("status") or {}
            if status.get("completed") or status.get("status_str") == "error":
                seconds = time.perf_counter() - start
                if status.get("status_str") == "error":
                    return RunResult(seconds, _error_text(status))
                return RunResult(seconds)
            time.sleep(0.05)
        self.interrupt()
        return RunResult(timeout, f"timed out after {timeout:.0f} s")

    def interrupt(self) -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(self.url("/interrupt"), data=b"", method="POST"),
                                   timeout=10.0).close()
        except (urllib.error.URLError, OSError):
            pass

    def stop(self) -> None:
        """Stop the process group: SIGINT, then SIGTERM, then SIGKILL, each with a bounded wait."""
        self._stop.set()
        for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                continue


def _combo(spec: Any) -> list[str]:
    # A combo is [[options...], {...}] in the V1 schema and ["COMBO", {"options": [...]}] in the V3 one.
    first = spec[0]
    if isinstance(first, list):
        return list(first)
    return list(spec[1].get("options", []))


def _error_text(status: dict[str, Any]) -> str:
    for kind, data in status.get("messages", []):
        if kind == "execution_error":
            return f"{data.get('node_type')} (node {data.get('node_id')}): {data.get('exception_message', '')[:400]}"
    return "failed (no execution_error message)"


def _spawn(label: str, command: list[str], cwd: Path, log: Path, env: dict[str, str]) -> Server:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return Server(label, int(command[command.index("--port") + 1]), process, log)


def start_comfyui(comfyui: Path, python: Path, base: Path, models: Path, pack: Path, inputs: Path, outputs: Path,
                  threads: int | None, extra: list[str] = ()) -> Server:
    """ComfyUI's ``main.py --cpu`` with its folders under ``base``, ``models`` linked in, and the latent pack."""
    for sub in ("custom_nodes", "user", "temp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    if not (base / "models").exists():
        (base / "models").symlink_to(models)
    link = base / "custom_nodes" / pack.name
    if not link.exists():
        link.symlink_to(pack)
    port = free_port()
    command = [str(python), str(comfyui / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(port),
               "--base-directory", str(base), "--input-directory", str(inputs), "--output-directory", str(outputs),
               "--disable-auto-launch", "--database-url", f"sqlite:///{base / 'comfyui.db'}", *extra]
    return _spawn("ComfyUI", command, comfyui, base / "server.log", _env(threads))


def start_hearth(python: Path, base: Path, models: Path, pack: Path, inputs: Path, outputs: Path,
                 threads: int | None) -> Server:
    """Hearth's ``comfy serve`` with ``--models-dir models``, the latent pack as its only custom-node folder."""
    base.mkdir(parents=True, exist_ok=True)
    nodes = base / "custom_nodes"
    nodes.mkdir(exist_ok=True)
    if not (nodes / pack.name).exists():
        (nodes / pack.name).symlink_to(pack)
    port = free_port()
    command = [str(python), "-c", "from hearth.cli.main import main; main()", "serve", "--port", str(port),
               "--models-dir", str(models), "--data", str(base / "data"), "--out", str(outputs),
               "--input-dir", str(inputs), "--custom-nodes", str(nodes), "--isolation", "off",
               "--no-frontend", "--log-level", "info"]
    return _spawn("Hearth", command, base, base / "server.log", _env(threads))


def _env(threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTH_", "VIRTUAL_ENV"))}
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env
