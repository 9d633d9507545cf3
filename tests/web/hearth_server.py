"""Helpers for the server tests: a real ``comfy serve`` process on a free loopback port, and small clients.

A module of its own (not conftest.py) so test modules import it by a name no other test folder uses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[2]
TEST_PACKS = Path(__file__).resolve().parent / "custom_nodes"
DEMO = REPO / "examples" / "workflows" / "builtin_demo_api.json"
LAUNCH = "import sys; from hearth.cli.main import main; sys.exit(main(sys.argv[1:]))"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HearthServer:
    """One ``comfy serve`` subprocess; ``start``/``stop``/``kill`` can be repeated on the same data folder."""

    def __init__(self, data: Path, *extra: str) -> None:
        self.data = data
        self.extra = list(extra)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"{data.name}-server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, expect_ok: bool = True) -> HearthServer:
        self.port = free_port()
        # Hearth's own settings stay out, except the isolation mode the suite runs with (tests/conftest.py).
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_") or k == "HEARTH_ISOLATION"}
        env["PYTHONPATH"] = str(REPO)
        cmd = [sys.executable, "-c", LAUNCH, "serve", "--port", str(self.port), "--data", str(self.data),
               "--custom-nodes", str(TEST_PACKS), "--log-level", "warning", *self.extra]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.data.parent, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.base}/api/features", headers=headers, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.output()}")

    @property
    def token(self) -> str | None:
        return self.extra[self.extra.index("--token") + 1] if "--token" in self.extra else None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: the process dies as in a crash, with no chance to tidy up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # -- clients ---------------------------------------------------------------------------------------------

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, **kwargs)

    def ws(self, client_id: str | None = None, **kwargs: Any) -> ClientConnection:
        query = f"?clientId={client_id}" if client_id else ""
        return connect(f"ws://127.0.0.1:{self.port}/ws{query}", open_timeout=10, **kwargs)


def demo_prompt() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def slow_prompt(label: str, seconds: float = 1.0, steps: int = 4) -> dict[str, Any]:
    return {"1": {"class_type": "HearthTestSlow", "inputs": {"label": label, "seconds": seconds, "steps": steps}}}


def queue(client: httpx.Client, prompt: dict[str, Any], **body: Any) -> str:
    response = client.post("/prompt", json={"prompt": prompt, **body})
    assert response.status_code == 200, response.text
    return response.json()["prompt_id"]


def wait_history(client: httpx.Client, prompt_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = client.get(f"/history/{prompt_id}").json()
        if prompt_id in entry:
            return entry[prompt_id]
        time.sleep(0.05)
    raise AssertionError(f"prompt {prompt_id} did not finish within {timeout}s; queue: {client.get('/queue').json()}")


def wait_running(client: httpx.Client, prompt_id: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(item[1] == prompt_id for item in client.get("/queue").json()["queue_running"]):
            return
        time.sleep(0.02)
    raise AssertionError(f"prompt {prompt_id} never started running")


def receive_until(ws: ClientConnection, done: Any, timeout: float = 30.0) -> list[Any]:
    """Messages (JSON decoded; binary frames as bytes) up to and including the first for which ``done`` is true."""
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        raw = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        message = json.loads(raw) if isinstance(raw, str) else raw
        messages.append(message)
        if done(message):
            return messages


def finished(prompt_id: str) -> Any:
    return lambda m: isinstance(m, dict) and m["type"] == "executing" and m["data"]["node"] is None \
        and m["data"]["prompt_id"] == prompt_id


def new_id() -> str:
    return uuid.uuid4().hex
