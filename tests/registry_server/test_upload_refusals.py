"""A PUT the registry refuses before reading it (used, unknown or expired upload URL) still gets its answer.

Against a real `comfy registry serve` and a real HTTP client: after an upload, a `kill -9` and a restart, a second
PUT of the archive to the same signed URL was answered 409 while the client was still sending, the server closed
the connection, and the client saw ECONNRESET instead of the message. The server now reads (and discards) the body,
up to the upload limit, before it answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hearth.registry.archive import build_archive
from hearth.registry_server.settings import Settings
from tests.harness.packs import make_pack
from tests.registry_server.helpers import Hub, unique
from tests.registry_server.servers import ROOT, _wait_http, free_port


class Serve:
    """`comfy registry serve` on a data folder; kill -9 and start again on the same folder."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Serve:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.data.parent / f"serve-{port}.log", "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from hearth.cli.main import main; sys.exit(main(sys.argv[1:]))",
             "registry", "serve", "--port", str(port), "--data", str(self.data), "--no-isolate-import"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT)
        _wait_http(f"{self.url}/healthz", self.proc)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[], tuple[Serve, Hub]]]:
    started: list[tuple[Serve, Hub]] = []

    def start() -> tuple[Serve, Hub]:
        data = tmp_path / "registry"
        server = Serve(data).start()
        hub = Hub(server.url, Settings(data_dir=data))
        started.append((server, hub))
        return server, hub

    yield start
    for server, hub in started:
        hub.close()
        server.kill()


def trickled(data: bytes, pieces: int = 16) -> Iterator[bytes]:
    """The body in pieces with pauses, as a slow link sends it: the server's answer comes mid-body."""
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        yield data[start:start + step]
        time.sleep(0.02)


def test_second_put_after_kill_9_gets_the_409_message(serve, tmp_path: Path) -> None:  # noqa: ANN001
    server, hub = serve()
    publisher, token = hub.new_publisher()
    name = unique("again-")
    archive = build_archive(make_pack(tmp_path, name, "1.0.0", publisher,
                                      extra_files={"data.bin": os.urandom(600_000).hex()[:600_000]}),
                            tmp_path / "pack.zip")
    signed = hub.reserve(publisher, token, name, "1.0.0").json()["signedUrl"]
    data = archive.path.read_bytes()
    assert httpx.put(signed, content=data, timeout=60).status_code == 200
    server.kill()  # just after the upload
    hub.close()

    server, hub = serve()
    again = signed.replace(signed.split("/uploads/")[0], server.url)
    for body in (data, trickled(data)):
        response = httpx.put(again, content=body, headers={"Content-Type": "application/zip"}, timeout=60)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "upload_url_used", response.text
        assert "single-use" in response.text
    early, answer = raw_put(again, data)
    assert early == b"", f"answered before the body was read: {early[:80]!r}"
    assert answer.startswith(b"HTTP/1.1 409") and b"upload URLs are single-use" in answer


def test_unknown_upload_url_gets_the_404_message_while_sending(serve) -> None:  # noqa: ANN001
    server, _ = serve()
    response = httpx.put(f"{server.url}/uploads/{'x' * 32}", content=trickled(os.urandom(2_000_000)),
                         headers={"Content-Type": "application/zip"}, timeout=60)
    assert response.status_code == 404, response.text
    assert "publish again" in response.text
    early, answer = raw_put(f"{server.url}/uploads/{'y' * 32}", os.urandom(1_000_000))
    assert early == b"" and answer.startswith(b"HTTP/1.1 404") and b"publish again" in answer




def raw_put(url: str, body: bytes) -> tuple[bytes, bytes]:
    """PUT ``body`` over a plain socket: half, a pause, the rest; returns (what came during the pause, the answer).

    A client on a slow link, or one that reads only once it has sent everything (Node's http, for one), is reset
    if the server answers and closes mid-body; a server that reads the body first sends nothing during the pause.
    """
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/zip\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[: len(body) // 2])
        sock.settimeout(1.0)
        try:
            early = sock.recv(65536)
        except TimeoutError:
            early = b""
        sock.settimeout(30)
        sock.sendall(body[len(body) // 2:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return early, answer
