"""Plugins extend the server: register_routes adds routes (bare and /api); the ComfyUI frontend takes / when present."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from hearth_server import HearthServer
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from hearth.core.hookspecs import hookimpl
from hearth.core.plugins import PluginManager
from hearth.core.types import Route
from hearth.web import frontend
from hearth.web.app import create_app
from hearth.web.config import ServerConfig

# The name Starlette's TestClient sends as the Host: allowed as --allow-host would allow it (only loopback
# names reach a server without a token).
TESTSERVER = ["testserver"]


class StatusRoutes:
    @hookimpl
    def register_routes(self) -> list[Route]:
        async def status(request: Request) -> dict[str, Any]:
            return {"pack": "toy", "query": request.query_params.get("q")}

        async def echo(request: Request) -> PlainTextResponse:
            return PlainTextResponse((await request.body()).decode().upper())

        return [Route("GET", "/toy/status", status), Route("post", "/toy/echo", echo)]


def test_register_routes_mounts_plugin_routes_bare_and_under_api(tmp_path: Path) -> None:
    plugins = PluginManager().load(environ={})
    plugins.register(StatusRoutes(), "toy-routes")
    app = create_app(ServerConfig(allowed_hosts=TESTSERVER, data=tmp_path), plugins=plugins)
    with TestClient(app) as client:
        for prefix in ("", "/api"):
            assert client.get(f"{prefix}/toy/status", params={"q": "1"}).json() == {"pack": "toy", "query": "1"}
            assert client.post(f"{prefix}/toy/echo", content=b"hi").text == "HI"
        assert client.get("/api/features").status_code == 200  # the builtin API is still there


@pytest.mark.parametrize("how", ["not installed", "--no-frontend"])
def test_hearth_ui_takes_root_without_the_frontend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    # Whatever this machine has installed: the frontend absent, or present and turned off.
    if how == "not installed":
        monkeypatch.setattr(frontend, "static_folder", lambda: None)
    config = ServerConfig(allowed_hosts=TESTSERVER, data=tmp_path, serve_frontend=how != "--no-frontend")
    with TestClient(create_app(config, plugins=PluginManager().load(environ={}))) as client:
        assert "<title>Hearth</title>" in client.get("/").text


def test_comfyui_frontend_is_served_at_root_when_installed(server: HearthServer, client: httpx.Client) -> None:
    folder = frontend.static_folder()
    if folder is None:
        pytest.skip("comfyui-frontend-package is not installed (optional extra: pip install comfy-hearth[frontend])")
    root = client.get("/")
    assert root.status_code == 200 and root.text == (folder / "index.html").read_text()
    assert "<title>Hearth</title>" in client.get("/hearth/").text  # Hearth's UI stays at /hearth/
    stats = client.get("/api/system_stats").json()
    assert stats["system"]["required_frontend_version"] == frontend.version()
