"""The wait for the plugins is bounded and honest: a request that needs them gets a 503 naming why when their load
fails or outlasts ``ServerConfig.load_timeout``, never a hang; the routes that answer meanwhile still do. In
process, with the load held or broken by hand (the real server's behaviour is in test_server_ready.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from hearth.core.runtime import Runtime
from hearth.web.app import ANSWERED_FROM_CATALOGUE, ANSWERED_WHILE_LOADING, API_ROUTERS, create_app
from hearth.web.config import ServerConfig
from hearth.web.runtime import ServerState

PROMPT = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "x"}},
          "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}


def builtin_runtime(tmp_path: Path) -> Runtime:
    """The core's own nodes only: loading them takes a moment, not the seconds of every plugin."""
    return Runtime.build(models_dir=tmp_path / "models", output=tmp_path / "out", input=tmp_path / "in",
                         entry_points=False)


def config(tmp_path: Path, **kwargs: float) -> ServerConfig:
    return ServerConfig(data=tmp_path / "data", allowed_hosts=["testserver"], serve_frontend=False, **kwargs)


def test_every_route_said_to_answer_while_loading_exists() -> None:
    served = {f"{method} {route.path}" for router in API_ROUTERS for route in router.routes
              for method in getattr(route, "methods", None) or ()}
    assert ANSWERED_WHILE_LOADING | ANSWERED_FROM_CATALOGUE <= served
    assert "POST /prompt" not in ANSWERED_WHILE_LOADING and "GET /extensions" not in ANSWERED_WHILE_LOADING


def test_a_load_that_fails_refuses_prompts_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: ServerState) -> None:
        raise RuntimeError("plugin manager exploded")

    monkeypatch.setattr(ServerState, "load_plugins", broken)
    with TestClient(create_app(config(tmp_path), builtin_runtime(tmp_path))) as client:
        answer = client.post("/prompt", json={"prompt": PROMPT})
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert error["type"] == "plugins_not_loaded"
        assert "failed to load (RuntimeError: plugin manager exploded)" in error["message"]
        assert "restart" in error["message"]
        assert client.get("/api/extensions").status_code == 503
        assert client.get("/api/queue").json() == {"queue_running": [], "queue_pending": []}
        assert client.get("/api/system_stats").json()["devices"][0]["type"] == "cpu"


def test_a_load_that_outlasts_the_wait_answers_503_then_serves(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    load = ServerState.load_plugins

    def held(self: ServerState) -> None:
        release.wait(30)
        load(self)

    monkeypatch.setattr(ServerState, "load_plugins", held)
    with TestClient(create_app(config(tmp_path, load_timeout=0.3), builtin_runtime(tmp_path))) as client:
        answer = client.post("/prompt", json={"prompt": PROMPT})
        assert answer.status_code == 503
        assert "still loading after 0.3 s" in answer.json()["error"]["message"]
        assert client.get("/api/settings").status_code == 200  # answered at once meanwhile
        release.set()
        client.app.state.hearth.loaded.result(timeout=30)
        answer = client.post("/prompt", json={"prompt": PROMPT})
        assert answer.status_code == 200, answer.text
