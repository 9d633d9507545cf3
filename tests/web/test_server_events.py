"""The WebSocket: ComfyUI's event sequence, events only for the submitting client, previews, and garbage input."""

from __future__ import annotations

import json
import struct
import time

import httpx
import pytest
from hearth_server import (
    HearthServer,
    demo_prompt,
    finished,
    new_id,
    queue,
    receive_until,
    slow_prompt,
    wait_history,
)
from websockets.exceptions import ConnectionClosed

MAJOR = {"execution_start", "execution_cached", "executing", "executed", "execution_success", "execution_error",
         "execution_interrupted"}


def types(messages: list) -> list[str]:
    return [m["type"] for m in messages if isinstance(m, dict) and m["type"] in MAJOR]


def test_greeting_is_status_with_sid(server: HearthServer) -> None:
    sid = new_id()
    with server.ws(sid) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["type"] == "status"
        assert hello["data"]["sid"] == sid
        assert isinstance(hello["data"]["status"]["exec_info"]["queue_remaining"], int)
    with server.ws() as ws:  # no clientId: the server names the client
        assert json.loads(ws.recv(timeout=5))["data"]["sid"]


def test_feature_flags_answer(server: HearthServer) -> None:
    with server.ws(new_id()) as ws:
        ws.recv(timeout=5)
        ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        flags = receive_until(ws, lambda m: isinstance(m, dict) and m["type"] == "feature_flags", timeout=5)[-1]
        assert flags["data"]["supports_preview_metadata"] is True and flags["data"]["max_upload_size"] > 0


def test_event_sequence_for_a_builtin_prompt_goes_to_its_client_only(server: HearthServer,
                                                                     client: httpx.Client) -> None:
    mine, other = new_id(), new_id()
    prompt = demo_prompt()
    prompt["5"]["inputs"]["value"] = f"events-{mine}"  # a new file name prefix: nodes 5, 6 and 7 must run
    with server.ws(mine) as ws, server.ws(other) as bystander:
        ws.recv(timeout=5)
        bystander.recv(timeout=5)
        prompt_id = queue(client, prompt, client_id=mine)
        messages = receive_until(ws, finished(prompt_id))
        seq = types(messages)
        assert seq[0] == "execution_start" and seq[1] == "execution_cached"
        assert seq[-2:] == ["execution_success", "executing"]
        executing = [m["data"]["node"] for m in messages if isinstance(m, dict) and m["type"] == "executing"]
        assert executing[-1] is None and executing.index("5") < executing.index("6") < executing.index("7")
        executed = [m["data"] for m in messages if isinstance(m, dict) and m["type"] == "executed"]
        assert [e["node"] for e in executed] == ["7"]
        assert executed[0]["output"]["images"][0]["filename"].endswith("_00001_.png")
        assert all(m["data"]["prompt_id"] == prompt_id for m in messages
                   if isinstance(m, dict) and m["type"] in MAJOR)

        # Run it again: everything is cached, and the cached output node still reports its output.
        again = queue(client, prompt, client_id=mine)
        messages = receive_until(ws, finished(again))
        cached = next(m for m in messages if isinstance(m, dict) and m["type"] == "execution_cached")
        assert sorted(cached["data"]["nodes"]) == ["1", "2", "3", "4", "5", "6", "7"]
        assert types(messages) == ["execution_start", "execution_cached", "executed", "execution_success",
                                   "executing"]

        # The other client saw queue status updates and nothing of the execution.
        time.sleep(0.2)
        seen = []
        while True:
            try:
                seen.append(json.loads(bystander.recv(timeout=0.2)))
            except TimeoutError:
                break
        assert seen and {m["type"] for m in seen} == {"status"}


def test_prompt_without_client_id_is_broadcast(server: HearthServer, client: httpx.Client) -> None:
    with server.ws(new_id()) as a, server.ws(new_id()) as b:
        a.recv(timeout=5)
        b.recv(timeout=5)
        prompt_id = queue(client, slow_prompt(f"broadcast-{new_id()}", seconds=0, steps=1))
        for ws in (a, b):
            assert "execution_success" in types(receive_until(ws, finished(prompt_id)))


@pytest.mark.parametrize("metadata", [False, True])
def test_progress_and_binary_previews(server: HearthServer, client: httpx.Client, metadata: bool) -> None:
    sid = new_id()
    with server.ws(sid) as ws:
        ws.recv(timeout=5)
        if metadata:
            ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        prompt = {"1": {"class_type": "HearthTestPreview", "inputs": {"label": new_id()}}}
        prompt_id = queue(client, prompt, client_id=sid)
        messages = receive_until(ws, finished(prompt_id))
    progress = [m["data"] for m in messages if isinstance(m, dict) and m["type"] == "progress"]
    assert [(p["value"], p["max"], p["node"]) for p in progress] == [(1, 2, "1"), (2, 2, "1")]
    assert all("preview" not in p for p in progress)
    states = [m["data"] for m in messages if isinstance(m, dict) and m["type"] == "progress_state"]
    assert states and states[-1]["nodes"]["1"]["state"] == "finished"
    frames = [m for m in messages if isinstance(m, bytes)]
    assert len(frames) == 1
    kind = struct.unpack(">I", frames[0][:4])[0]
    if metadata:
        assert kind == 4
        length = struct.unpack(">I", frames[0][4:8])[0]
        meta = json.loads(frames[0][8:8 + length])
        assert meta["node_id"] == "1" and meta["prompt_id"] == prompt_id and meta["image_type"] == "image/jpeg"
        image = frames[0][8 + length:]
    else:
        assert kind == 1 and struct.unpack(">I", frames[0][4:8])[0] == 1  # JPEG
        image = frames[0][8:]
    assert image[:2] == b"\xff\xd8"


def test_garbage_on_the_websocket_is_ignored(server: HearthServer, client: httpx.Client) -> None:
    sid = new_id()
    with server.ws(sid) as ws:
        ws.recv(timeout=5)
        for junk in ("not json", "{\"type\": ", "[1,2,3]", "null", json.dumps({"type": "feature_flags", "data": 5}),
                     "[" * 100_000):
            ws.send(junk)
        ws.send(b"\x00\x01binary")
        prompt_id = queue(client, slow_prompt(f"after-garbage-{sid}", seconds=0, steps=1), client_id=sid)
        assert "execution_success" in types(receive_until(ws, finished(prompt_id)))


def test_an_oversized_frame_closes_only_that_socket(server: HearthServer, client: httpx.Client) -> None:
    with server.ws(new_id(), max_size=None) as ws:
        ws.recv(timeout=5)
        ws.send("x" * (17 * 1024 * 1024))
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=10)
    assert client.get("/api/prompt").status_code == 200
    with server.ws(new_id()) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "status"


def test_a_failing_node_reports_execution_error_and_the_queue_goes_on(server: HearthServer,
                                                                      client: httpx.Client) -> None:
    sid = new_id()
    with server.ws(sid) as ws:
        ws.recv(timeout=5)
        failing = queue(client, {"1": {"class_type": "HearthTestFail", "inputs": {"message": f"boom-{sid}"}}},
                        client_id=sid)
        after = queue(client, slow_prompt(f"after-failure-{sid}", seconds=0, steps=1), client_id=sid)
        messages = receive_until(ws, finished(failing))
        error = next(m["data"] for m in messages if isinstance(m, dict) and m["type"] == "execution_error")
        assert error["prompt_id"] == failing and error["node_id"] == "1" and error["node_type"] == "HearthTestFail"
        assert error["exception_message"] == f"boom-{sid}" and error["exception_type"].endswith("ValueError")
        assert error["traceback"] and "current_inputs" in error
        assert "execution_success" in types(receive_until(ws, finished(after)))
    entry = wait_history(client, failing)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert client.get(f"/api/jobs/{failing}").json()["status"] == "failed"


def test_reconnecting_mid_prompt_replays_the_running_node(server: HearthServer, client: httpx.Client) -> None:
    sid = new_id()
    with server.ws(sid) as ws:
        ws.recv(timeout=5)
        prompt_id = queue(client, slow_prompt(f"reconnect-{sid}", seconds=2, steps=20), client_id=sid)
        receive_until(ws, lambda m: isinstance(m, dict) and m["type"] == "progress")
    with server.ws(sid) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "status"
        resumed = json.loads(ws.recv(timeout=5))
        assert resumed == {"type": "executing", "data": {"node": "1", "display_node": "1", "prompt_id": prompt_id}}
        assert "execution_success" in types(receive_until(ws, finished(prompt_id)))


def test_free_memory_drops_the_output_cache(server: HearthServer, client: httpx.Client) -> None:
    sid = new_id()
    prompt = slow_prompt(f"free-{sid}", seconds=0, steps=1)

    def cached_nodes(ws: object) -> list[str]:
        prompt_id = queue(client, prompt, client_id=sid)
        messages = receive_until(ws, finished(prompt_id))
        return next(m["data"]["nodes"] for m in messages if isinstance(m, dict) and m["type"] == "execution_cached")

    with server.ws(sid) as ws:
        ws.recv(timeout=5)
        assert cached_nodes(ws) == []
        assert cached_nodes(ws) == ["1"]
        assert client.post("/api/free", json={"free_memory": True}).status_code == 200
        time.sleep(0.5)  # applied by the worker between prompts, as ComfyUI does
        assert cached_nodes(ws) == []
