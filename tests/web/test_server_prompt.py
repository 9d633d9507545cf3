"""POST /prompt: ComfyUI's error shapes for bad input, partial validity, and bodies too big or too deep."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hearth_server import demo_prompt, queue, slow_prompt, wait_history, wait_running


def assert_error_shape(body: dict[str, Any], kind: str) -> None:
    assert set(body) == {"error", "node_errors"}
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    assert body["error"]["type"] == kind, body


@pytest.mark.parametrize(("body", "kind"), [
    (b"{not json", "invalid_prompt"),
    (b"", "invalid_prompt"),
    (b"[1, 2]", "invalid_prompt"),
    (b'{"client_id": "x"}', "no_prompt"),
    (b'{"prompt": 5}', "invalid_prompt"),
    (b'{"prompt": {"1": {"inputs": {}}}}', "invalid_prompt"),
    (b'{"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}', "invalid_prompt"),
    (b'{"prompt": {"1": {"class_type": "PrimitiveString", "inputs": {"value": "x"}}}}', "prompt_no_outputs"),
    (b'{"prompt": {"1": {"class_type": "SaveImage", "inputs": {}}}, "extra_data": [1]}', "invalid_prompt"),
    (b"\xff\xfe", "invalid_prompt"),
])
def test_bad_prompts_get_400_in_comfyui_shape(client: httpx.Client, body: bytes, kind: str) -> None:
    response = client.post("/prompt", content=body)
    assert response.status_code == 400
    assert_error_shape(response.json(), kind)


def test_unknown_node_names_the_node(client: httpx.Client) -> None:
    body = client.post("/api/prompt", json={"prompt": {"12": {"class_type": "Nope", "inputs": {}}}}).json()
    assert "Nope" in body["error"]["message"] and "#12" in body["error"]["details"]


def test_no_valid_output_is_400_with_node_errors(client: httpx.Client) -> None:
    prompt = {"8": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
    response = client.post("/api/prompt", json={"prompt": prompt})
    assert response.status_code == 400
    body = response.json()
    assert_error_shape(body, "prompt_outputs_failed_validation")
    entry = body["node_errors"]["8"]
    assert entry["class_type"] == "SaveImage" and entry["dependent_outputs"] == ["8"]
    assert entry["errors"][0]["type"] == "required_input_missing"
    assert set(entry["errors"][0]) == {"type", "message", "details", "extra_info"}


def test_valid_outputs_run_when_others_fail(client: httpx.Client) -> None:
    prompt = demo_prompt()
    prompt["8"] = {"class_type": "SaveImage", "inputs": {"filename_prefix": "broken"}}
    response = client.post("/api/prompt", json={"prompt": prompt})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"prompt_id", "number", "node_errors"}
    assert list(body["node_errors"]) == ["8"]
    entry = wait_history(client, body["prompt_id"])
    assert entry["status"]["status_str"] == "success" and list(entry["outputs"]) == ["7"]


def test_partial_execution_targets_run_only_those(client: httpx.Client) -> None:
    prompt = demo_prompt()
    prompt["9"] = {"class_type": "HearthTestSlow", "inputs": {"label": "target", "seconds": 0, "steps": 1}}
    prompt_id = queue(client, prompt, partial_execution_targets=["9"])
    entry = wait_history(client, prompt_id)
    assert list(entry["outputs"]) == ["9"] and entry["prompt"][4] == ["9"]


def test_duplicate_pending_prompt_id_is_refused(client: httpx.Client) -> None:
    blocker = queue(client, slow_prompt("dup-blocker", seconds=0.5))
    wait_running(client, blocker)
    first = client.post("/prompt", json={"prompt": slow_prompt("dup", 0), "prompt_id": "dup-1"})
    assert first.status_code == 200 and first.json()["prompt_id"] == "dup-1"
    again = client.post("/prompt", json={"prompt": slow_prompt("dup", 0), "prompt_id": "dup-1"})
    assert again.status_code == 400 and "dup-1" in again.json()["error"]["message"]
    wait_history(client, "dup-1")


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    padding = "x" * (3 * 1024 * 1024)
    response = client.post("/api/prompt", json={"prompt": {"1": {"class_type": "PrimitiveString",
                                                                "inputs": {"value": padding}}}})
    assert response.status_code == 413
    assert_error_shape(response.json(), "request_too_large")

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"x" * 100_000

    streamed = client.post("/api/prompt", content=chunks())
    assert streamed.status_code == 413
    assert client.get("/api/prompt").status_code == 200  # still serving


def test_deeply_nested_json_is_400(client: httpx.Client) -> None:
    body = b'{"prompt": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    response = client.post("/api/prompt", content=body)
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid_prompt")


def test_a_long_chain_validates_and_runs(client: httpx.Client) -> None:
    # 2,000 nodes: validation and scheduling are iterative, so a long graph is no recursion problem.
    prompt: dict[str, Any] = {"0": {"class_type": "PrimitiveString", "inputs": {"value": "a"}}}
    for i in range(1, 2000):
        prompt[str(i)] = {"class_type": "StringConcatenate",
                          "inputs": {"string_a": [str(i - 1), 0], "string_b": "", "delimiter": ""}}
    prompt["out"] = {"class_type": "HearthTestSlow", "inputs": {"label": ["1999", 0], "seconds": 0, "steps": 1}}
    prompt_id = queue(client, prompt)
    entry = wait_history(client, prompt_id, timeout=60)
    assert entry["status"]["status_str"] == "success" and entry["outputs"]["out"]["text"] == ["a"]
