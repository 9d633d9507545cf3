"""register_prompt_handlers, on_server_start and on_server_stop: plugins rewrite submitted prompts, serve beyond
routes and publish events to the server's WebSocket clients."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from hearth.core.hookspecs import hookimpl
from hearth.core.plugins import PluginManager
from hearth.web.app import create_app
from hearth.web.config import ServerConfig

# The name Starlette's TestClient sends as the Host: allowed as --allow-host would allow it (only loopback
# names reach a server without a token).
TESTSERVER = ["testserver"]


class SizeFloor:
    """Raises every EmptyImage to at least 16 pixels a side, as a pack's on-prompt handler might rewrite a prompt."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def register_prompt_handlers(self):
        def floor(body: dict[str, Any]) -> dict[str, Any]:
            self.seen.append(body.get("client_id"))
            for node in body["prompt"].values():
                if node["class_type"] == "EmptyImage":
                    node["inputs"]["width"] = max(16, node["inputs"]["width"])
            return body

        return [floor]


def test_hook_register_prompt_handlers(tmp_path: Path) -> None:
    handler = SizeFloor()
    plugins = PluginManager().load(environ={}, entry_points=False)
    plugins.register(handler, "size-floor")
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    with TestClient(create_app(ServerConfig(allowed_hosts=TESTSERVER, data=tmp_path), plugins=plugins)) as client:
        queued = client.post("/prompt", json={"prompt": prompt, "client_id": "c1"})
        assert queued.status_code == 200, queued.text
        assert handler.seen == ["c1"]
        prompt_id = queued.json()["prompt_id"]
        for _ in range(400):
            stored = client.get(f"/history/{prompt_id}").json()
            if prompt_id in stored:
                break
            time.sleep(0.05)
        entry = stored[prompt_id]
        assert entry["prompt"][2]["1"]["inputs"]["width"] == 16
        assert entry["status"]["status_str"] == "success"


class Lifecycle:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def on_server_start(self, app, events, queue):
        async def hello():
            events.publish("toy.hello", {"from": "toy"}, None)
            return PlainTextResponse("hi")

        app.add_api_route("/toy/hello", hello)
        self.calls.append(("start", events))

    @hookimpl
    def on_server_stop(self, app, events):
        self.calls.append(("stop", events))


def test_hook_on_server_start(tmp_path: Path) -> None:
    plugin = Lifecycle()
    plugins = PluginManager().load(environ={}, entry_points=False)
    plugins.register(plugin, "lifecycle")
    with TestClient(create_app(ServerConfig(allowed_hosts=TESTSERVER, data=tmp_path), plugins=plugins)) as client:
        assert [name for name, _ in plugin.calls] == ["start"]
        with client.websocket_connect("/ws?clientId=c1") as ws:
            assert ws.receive_json()["type"] == "status"
            assert client.get("/toy/hello").text == "hi"
            assert ws.receive_json() == {"type": "toy.hello", "data": {"from": "toy"}}
    assert callable(plugin.calls[0][1].publish_binary) and plugin.calls[0][1].client_of(None) is None


def test_hook_on_server_stop(tmp_path: Path) -> None:
    plugin = Lifecycle()
    plugins = PluginManager().load(environ={}, entry_points=False)
    plugins.register(plugin, "lifecycle")
    with TestClient(create_app(ServerConfig(allowed_hosts=TESTSERVER, data=tmp_path), plugins=plugins)):
        pass
    (start, started), (stop, stopped) = plugin.calls
    assert (start, stop) == ("start", "stop") and started is stopped
