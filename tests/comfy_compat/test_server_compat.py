"""ComfyUI packs' server side on Hearth: PromptServer routes, on-prompt handlers, send_sync and pack web folders."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import hearth_comfy_compat as comfy_compat
import pytest
from hearth_comfy_compat import aiohttp_web
from hearth_comfy_compat.server import BinaryEventTypes, PromptServer
from hearth_comfy_compat.server_routes import starlette_path
from starlette.testclient import TestClient

from hearth.core.runtime import Runtime
from hearth.web.app import create_app
from hearth.web.config import ServerConfig

# The name Starlette's TestClient sends as the Host: allowed as --allow-host would allow it (only loopback
# names reach a server without a token).
TESTSERVER = ["testserver"]

PACKS = Path(__file__).parent / "packs"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("data")
    config = ServerConfig(allowed_hosts=TESTSERVER, data=data)
    runtime = Runtime.build(environ={}, custom_nodes=[PACKS], models_dir=config.models_dir,
                            output=config.folders.output, input=config.folders.input, temp=config.folders.temp)
    plugins = runtime.plugins
    for name in ("routes_pack", "webdir_pack"):
        assert plugins.records[name].error is None, plugins.records[name].traceback
    with TestClient(create_app(config, runtime)) as http:
        yield http


def test_module_level_routes_are_served_bare_and_under_api(client: TestClient) -> None:
    for prefix in ("", "/api"):
        name = f"shopping{prefix.strip('/')}"
        saved = client.post(f"{prefix}/routes_pack/notes/{name}", json={"text": "eggs"})
        assert saved.status_code == 201 and saved.json() == {"saved": name}
        note = client.get(f"{prefix}/routes_pack/notes/{name}")
        assert note.status_code == 200 and note.text == "eggs"
        assert note.headers["content-type"].startswith("text/plain")
    assert client.get("/routes_pack/notes", params={"prefix": "shop"}).json() == {
        "notes": ["shopping", "shoppingapi"]}
    assert client.post("/routes_pack/notes/x", json={}).status_code == 400


def test_raised_http_errors_and_regex_path_parameters(client: TestClient) -> None:
    missing = client.get("/routes_pack/notes/nothing")
    assert missing.status_code == 404 and missing.text == "no note nothing"
    assert client.get("/api/routes_pack/version/12").json() == {"major": 12}
    assert client.get("/routes_pack/version/twelve").status_code in (404, 405)  # \d+ refuses letters


def test_multipart_upload_reaches_the_handler_as_file_fields(client: TestClient) -> None:
    response = client.post("/routes_pack/upload", files={"image": ("up.png", b"\x89PNG-bytes", "image/png")},
                           data={"label": "mine"})
    assert response.json() == {"name": "up.png", "size": 10, "label": "mine"}


def test_send_sync_reaches_the_named_websocket_client(client: TestClient) -> None:
    with client.websocket_connect("/ws?clientId=alice") as alice:
        assert alice.receive_json()["type"] == "status"
        assert client.post("/routes_pack/broadcast", json={"text": "hi", "sid": "alice"}).status_code == 204
        assert alice.receive_json() == {"type": "routes_pack.message", "data": {"text": "hi"}}


def test_on_prompt_handler_rewrites_the_prompt_and_nodes_send_events(client: TestClient) -> None:
    with client.websocket_connect("/ws?clientId=bob") as ws, client.websocket_connect("/ws?clientId=carol") as other:
        ws.receive_json()
        other.receive_json()
        prompt = {"1": {"class_type": "RoutesPackEcho", "inputs": {"text": "__tag__"}}}
        queued = client.post("/prompt", json={"prompt": prompt, "client_id": "bob"})
        assert queued.status_code == 200, queued.text
        prompt_id = queued.json()["prompt_id"]
        echo, text_frame, deadline = None, None, time.monotonic() + 30
        while (echo is None or text_frame is None) and time.monotonic() < deadline:
            message = ws.receive()
            if message.get("bytes") is not None:
                text_frame = message["bytes"]
            elif message.get("text"):
                event = json.loads(message["text"])
                if event["type"] == "routes_pack.echo":
                    echo = event["data"]
        # The node sent to PromptServer.instance.client_id, the submitter: carol sees only the later broadcast.
        client.post("/routes_pack/broadcast", json={"text": "to all"})
        seen = []
        while not seen or seen[-1] != "routes_pack.message":
            message = other.receive()
            seen.append(json.loads(message["text"])["type"] if message.get("text") else "binary")
        assert "routes_pack.echo" not in seen and "binary" not in seen
    assert echo == {"text": "tagged by routes_pack", "node": "1"}
    kind, length = struct.unpack(">II", text_frame[:8])
    assert kind == BinaryEventTypes.TEXT and text_frame[8:8 + length] == b"1"
    assert text_frame[8 + length:] == b"echo: tagged by routes_pack"
    history = {}
    while prompt_id not in history and time.monotonic() < deadline:
        history = client.get(f"/history/{prompt_id}").json()
    assert history[prompt_id]["outputs"]["1"]["text"] == ["tagged by routes_pack"]


def test_aiohttp_names_hearth_lacks_fail_where_used_not_at_import(client: TestClient) -> None:
    if "aiohttp" not in comfy_compat.SERVED:
        pytest.skip("aiohttp is installed: packs get the real one")
    quiet = TestClient(client.app, raise_server_exceptions=False)  # the server answers 500, as a user sees it
    response = quiet.get("/routes_pack/fetch", params={"url": "http://example.invalid/"})
    assert response.status_code == 500
    assert "Hearth does not provide aiohttp.ClientSession (used by pack routes_pack)" in response.text
    assert "aiohttp.ClientSession" in comfy_compat.missing_names()["routes_pack"]


def test_pack_web_directory_is_served_and_listed(client: TestClient) -> None:
    script = client.get("/extensions/webdir_pack/widgets.js")
    assert script.status_code == 200 and "webdir_pack.widgets" in script.text
    assert client.get("/extensions/webdir_pack/css/style.css").text.startswith(".webdir-pack")
    assert client.get("/extensions/webdir-pack-legacy/menu.js").text.count("webdir_pack.legacy_menu") == 1
    listed = client.get("/api/extensions").json()
    assert {"/extensions/webdir_pack/widgets.js", "/extensions/webdir-pack-legacy/menu.js"} <= set(listed)
    assert client.get("/extensions/webdir_pack/../__init__.py").status_code == 404


def test_server_loop_is_the_running_servers(client: TestClient) -> None:
    loop = PromptServer.instance.loop
    assert loop is not None and loop.is_running()  # packs schedule work on it from node threads
    done = []
    loop.call_soon_threadsafe(done.append, "ran")
    deadline = time.monotonic() + 5
    while not done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done == ["ran"]


def test_prompt_queue_reads_the_servers_queue(client: TestClient) -> None:
    queue = PromptServer.instance.prompt_queue
    running, pending = queue.get_current_queue()
    assert queue.get_tasks_remaining() == len(running) + len(pending)
    assert client.get("/queue").json() == {"queue_running": running, "queue_pending": pending}


def test_server_parts_hearth_lacks_are_reported() -> None:
    with pytest.raises(comfy_compat.HearthDoesNotProvide,
                       match="Hearth does not provide server.PromptServer.instance.user_manager"):
        PromptServer.instance.user_manager  # noqa: B018
    assert not hasattr(PromptServer.instance, "internal_routes")


def test_prompt_server_without_a_server_drops_events() -> None:
    server = PromptServer()
    server.send_sync("nobody.listens", {"x": 1})  # no server attached: no error, nothing sent
    assert server.client_id is None and server.last_node_id is None
    with pytest.raises(RuntimeError, match="not running"):
        server.prompt_queue.get_current_queue()


def test_aiohttp_path_patterns_become_starlette_patterns() -> None:
    assert starlette_path("/a/{name}/b") == "/a/{name}/b"
    assert starlette_path("/files/{path:.*}") == "/files/{path:path}"
    assert starlette_path(r"/v/{n:\d+}").startswith("/v/{n:aiohttp_")


def test_reloaded_pack_routes_replace_the_old_ones() -> None:
    server = PromptServer()

    async def old(request):
        return aiohttp_web.Response(text="old")

    async def new(request):
        return aiohttp_web.Response(text="new")

    server.routes.get("/p")(old)
    server.routes.get("/p")(new)
    assert [d.handler for d, _ in server.route_definitions()] == [new]


def test_static_folders_packs_add_to_the_app(tmp_path: Path) -> None:
    from fastapi import FastAPI
    from hearth_comfy_compat.server_routes import mount

    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "logo.svg").write_text("<svg/>")
    server = PromptServer()
    server.app.router.add_static("/my_pack/assets", tmp_path / "assets")
    server.app.router.add_static("/", tmp_path / "assets")  # would cover the UI and the API: refused

    async def port(request):
        return aiohttp_web.json_response({"port": 12345})

    server.app.add_routes([aiohttp_web.get("/my_pack/port", port)])
    app = FastAPI()
    assert mount(app, server) == ["/my_pack/assets", "GET /my_pack/port"]
    with TestClient(app) as http:
        assert http.get("/my_pack/assets/logo.svg").text == "<svg/>"
        assert http.get("/logo.svg").status_code == 404
        assert http.get("/my_pack/port").json() == {"port": 12345}
        assert http.get("/api/my_pack/port").status_code == 404  # added to the app itself: bare only, as ComfyUI


def test_real_aiohttp_responses_are_converted() -> None:
    if "aiohttp" in comfy_compat.SERVED:
        pytest.skip("aiohttp is not installed (Hearth serves its own aiohttp.web)")
    from aiohttp import web
    from fastapi import FastAPI
    from hearth_comfy_compat.server_routes import mount

    routes = web.RouteTableDef()

    @routes.get("/real/json")
    async def as_json(request):
        return web.json_response({"q": request.rel_url.query.get("q")}, status=202)

    @routes.get("/real/text")
    async def as_text(request):
        return web.Response(text="plain", headers={"X-Pack": "yes"})

    @routes.get("/real/missing")
    async def missing(request):
        raise web.HTTPNotFound(text="nope")

    server = PromptServer()
    server.app.add_routes(routes)
    app = FastAPI()
    mount(app, server)
    with TestClient(app) as http:
        answer = http.get("/real/json", params={"q": "1"})
        assert answer.status_code == 202 and answer.json() == {"q": "1"}
        assert answer.headers["content-type"].startswith("application/json")
        text = http.get("/real/text")
        assert text.text == "plain" and text.headers["x-pack"] == "yes"
        assert http.get("/real/missing").status_code == 404


def test_on_prompt_handlers_run_in_order_once_each() -> None:
    server = PromptServer()
    server.add_on_prompt_handler(lambda body: {**body, "seen": [*body.get("seen", []), "a"]})
    server.add_on_prompt_handler(lambda body: {**body, "seen": [*body.get("seen", []), "b"]})

    def broken(body):
        raise ValueError("a pack bug")

    server.add_on_prompt_handler(broken)  # logged and skipped
    assert server.trigger_on_prompt({"prompt": {}}) == {"prompt": {}, "seen": ["a", "b"]}
