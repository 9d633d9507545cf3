"""Tokens, origins and the CLI's refusals. Nothing here binds a non-loopback address: the host rule is unit-tested."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hearth_server import HearthServer, new_id
from starlette.testclient import TestClient
from websockets.exceptions import InvalidStatus

from hearth.cli.main import main
from hearth.web.app import create_app
from hearth.web.config import ServerConfig, is_loopback
from hearth.web.security import Guard, UnsafePath, safe_join

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    server = HearthServer(tmp_path_factory.mktemp("guarded") / "data", "--token", TOKEN).start()
    yield server
    server.stop()


@pytest.mark.parametrize("path", ["/api/features", "/prompt", "/hearth/", "/", "/api/view?filename=x.png",
                                  "/extensions/hearth_test_pack/hello.js"])
def test_every_route_needs_the_token(guarded: HearthServer, path: str) -> None:
    with guarded.http() as client:
        refused = client.get(path)
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "unauthorized"
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code in (200, 404)


def test_token_in_the_page_url_sets_a_cookie_for_the_rest(guarded: HearthServer) -> None:
    with guarded.http() as client:
        page = client.get("/hearth/", params={"token": TOKEN})
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert client.get("/api/queue").status_code == 200  # the cookie jar now carries it
    with guarded.http(cookies={"hearth_token": "wrong"}) as client:
        assert client.get("/api/queue").status_code == 401


def test_websocket_needs_the_token(guarded: HearthServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        with guarded.ws(new_id()):
            pass
    assert refused.value.response.status_code == 403
    with guarded.ws(new_id(), additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "status"
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{guarded.port}/ws?clientId=x&token={TOKEN}") as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "status"


def test_cross_origin_requests_are_refused(server: HearthServer, client: httpx.Client) -> None:
    evil = {"Origin": "http://evil.example"}
    refused = client.post("/api/prompt", json={"prompt": {}}, headers=evil)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "forbidden_origin"
    same = {"Origin": f"http://127.0.0.1:{server.port}"}
    assert client.get("/api/queue", headers=same).status_code == 200
    with pytest.raises(InvalidStatus):
        with server.ws(new_id(), origin="http://evil.example"):
            pass


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.5", False), ("example.com", False),
])
def test_loopback_rule(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_token_is_generated_beyond_loopback_only(tmp_path: Path) -> None:
    assert ServerConfig(host="127.0.0.1", data=tmp_path).require_token() is None
    generated = ServerConfig(host="0.0.0.0", data=tmp_path).require_token()
    assert generated and len(generated) >= 24
    assert ServerConfig(host="0.0.0.0", data=tmp_path, token="given").require_token() == "given"
    assert ServerConfig(host="127.0.0.1", data=tmp_path, token="given").require_token() == "given"


def test_an_app_for_a_public_host_refuses_requests_without_its_token(tmp_path: Path) -> None:
    app = create_app(ServerConfig(host="0.0.0.0", data=tmp_path))  # built, never bound
    token = app.state.hearth.token
    assert token
    with TestClient(app, base_url="http://hearth.test") as client:
        assert client.get("/api/queue").status_code == 401
        assert client.get("/api/queue", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_second_server_on_the_same_data_folder_is_refused(server: HearthServer,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["serve", "--port", str(port), "--data", str(server.data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "in use by another comfy serve" in err and str(server.proc.pid) in err


def test_cli_refuses_env_bad_cache_and_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "home"))
    assert main(["serve", "--env", "gpu", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no environment named 'gpu'" in err
    assert main(["serve", "--cache", "bogus", "--data", str(tmp_path)]) == 2
    assert "--cache" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already in use" in err


@pytest.mark.parametrize(("origin", "host", "ok"), [
    (None, "127.0.0.1:8188", True),  # curl, Python clients: no Origin header
    ("http://127.0.0.1:8188", "127.0.0.1:8188", True),
    ("http://localhost:8188", "127.0.0.1:8188", False),  # another site name is another origin
    ("http://evil.example", "127.0.0.1:8188", False),
    ("null", "127.0.0.1:8188", False),  # sandboxed iframes and file:// pages
    ("https://ui.example", "127.0.0.1:8188", True),  # --allow-origin https://ui.example
])
def test_origin_rule(origin: str | None, host: str, ok: bool) -> None:
    guard = Guard(None, token=None, max_body=1, allowed_origins=["https://ui.example/"])
    headers = {"host": host} | ({"origin": origin} if origin else {})
    assert guard.origin_ok(headers) is ok


@pytest.mark.parametrize("parts", [("..",), ("a", "../../b"), ("/etc/passwd",), ("a\x00b",), ("\\\\server\\share",)])
def test_safe_join_refuses_escapes(tmp_path: Path, parts: tuple[str, ...]) -> None:
    with pytest.raises(UnsafePath):
        safe_join(tmp_path, *parts)


def test_safe_join_refuses_a_link_out(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    with pytest.raises(UnsafePath):
        safe_join(tmp_path / "root", "out", "secret.txt")
    assert safe_join(tmp_path / "root", "sub/../file.png") == (tmp_path / "root" / "file.png").resolve()
