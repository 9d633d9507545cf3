"""Loopback servers refuse foreign Host names (DNS rebinding); token servers sign browsers in with a page and a
cookie that outlives the browser session. Against the real ``comfy serve``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from hearth_server import HearthServer, new_id
from websockets.exceptions import InvalidStatus

from hearth.web.security import Guard
from hearth.web.signin import session_value

TOKEN = "s3cret-sign-in-token"
PAGE = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    server = HearthServer(tmp_path_factory.mktemp("signin") / "data", "--token", TOKEN, "--session-days", "2").start()
    yield server
    server.stop()


def test_a_rebinding_page_cannot_drive_a_loopback_server(server: HearthServer) -> None:
    evil = f"evil.example:{server.port}"
    headers = {"Host": evil, "Origin": f"http://{evil}"}
    with server.http() as client:
        for method, path in (("POST", "/prompt"), ("GET", "/userdata?dir=workflows"), ("GET", "/api/queue")):
            refused = client.request(method, path, headers=headers, json={"prompt": {}} if method == "POST" else None)
            assert refused.status_code == 403, path
            assert refused.json()["error"]["type"] == "forbidden_host"
            assert "--allow-host" in refused.json()["error"]["message"]
        for name in ("localhost", "127.0.0.1", "app.localhost"):
            assert client.get("/api/queue", headers={"Host": f"{name}:{server.port}"}).status_code == 200
    with pytest.raises(InvalidStatus) as refused_ws:
        with server.ws(new_id(), additional_headers={"Host": evil}, origin=f"http://{evil}"):
            pass
    assert refused_ws.value.response.status_code == 403


@pytest.mark.parametrize(("host", "ok"), [
    ("127.0.0.1:8188", True), ("localhost:8188", True), ("[::1]:8188", True), ("LOCALHOST", True),
    ("my.localhost:1", True), ("studio.lan:8188", True), ("evil.example:8188", False), ("127.0.0.1.evil.example", False),
    ("10.0.0.5:8188", False), (None, True),
])
def test_host_rule(host: str | None, ok: bool) -> None:
    guard = Guard(None, token=None, max_body=1, allowed_origins=[], allowed_hosts=["studio.lan"])
    assert guard.host_ok({} if host is None else {"host": host}) is ok


def test_a_browser_without_the_token_gets_a_sign_in_page_and_scripts_get_json(guarded: HearthServer) -> None:
    with guarded.http() as client:
        page = client.get("/hearth/", headers=PAGE)
        assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
        assert 'name="token"' in page.text and 'action="/hearth/sign-in"' in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        api = client.get("/api/queue")
        assert api.status_code == 401 and api.json()["error"]["type"] == "unauthorized"


def test_the_token_in_a_link_becomes_a_lasting_cookie_and_leaves_the_address_bar(guarded: HearthServer) -> None:
    with guarded.http() as client:
        answer = client.get("/hearth/", params={"token": TOKEN, "tab": "queue"}, headers=PAGE)
        assert answer.status_code == 303 and answer.headers["location"] == "/hearth/?tab=queue"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=172800" in cookie
        assert TOKEN not in cookie and session_value(TOKEN) in cookie
    # A restarted browser: a new client holding only the stored cookie.
    with guarded.http(cookies={"hearth_token": session_value(TOKEN)}) as browser:
        assert browser.get("/api/queue").status_code == 200
        assert browser.get("/hearth/", headers=PAGE).status_code == 200
        with guarded.ws(new_id(), additional_headers={"Cookie": f"hearth_token={session_value(TOKEN)}"}) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "status"
    # The cookie holds the session value, never the token: the token itself is no cookie.
    with guarded.http(cookies={"hearth_token": TOKEN}) as client:
        assert client.get("/api/queue").status_code == 401


def test_the_sign_in_form(guarded: HearthServer) -> None:
    with guarded.http() as client:
        page = client.get("/hearth/?tab=queue", headers=PAGE)
        nxt = re.search(r'name="next" value="([^"]*)"', page.text).group(1)
        assert nxt == "/hearth/?tab=queue"
        wrong = client.post("/hearth/sign-in", data={"token": "guess", "next": nxt})
        assert wrong.status_code == 401 and "not this server" in wrong.text and "set-cookie" not in wrong.headers
        right = client.post("/hearth/sign-in", data={"token": TOKEN, "next": nxt})
        assert right.status_code == 303 and right.headers["location"] == "/hearth/?tab=queue"
        assert client.get("/api/queue").status_code == 200
        for away in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            sent = client.post("/hearth/sign-in", data={"token": TOKEN, "next": away})
            assert sent.headers["location"] == "/", away
        huge = client.post("/hearth/sign-in", content=b"token=" + b"x" * 100_000,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert huge.status_code == 401


def test_hearths_pages_carry_a_strict_content_security_policy(server: HearthServer) -> None:
    with server.http() as client:
        for path in ("/hearth/", "/hearth/app.js"):
            response = client.get(path)
            assert response.status_code == 200
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in client.get("/api/queue").headers  # the API is no page
