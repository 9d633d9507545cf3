"""The queue and history survive restarts: pending prompts run after a crash, the prompt it cut short is failed."""

from __future__ import annotations

import signal
from pathlib import Path

from hearth_server import HearthServer, queue, slow_prompt, wait_history, wait_running

from hearth.web.store import CRASH_MESSAGE


def test_crash_mid_prompt_fails_that_prompt_and_the_queue_goes_on(tmp_path: Path) -> None:
    server = HearthServer(tmp_path / "data").start()
    try:
        with server.http() as client:
            done = queue(client, slow_prompt("before-crash", seconds=0, steps=1))
            wait_history(client, done)
            cut_short = queue(client, slow_prompt("crash-victim", seconds=60, steps=600))
            wait_running(client, cut_short)
            first = queue(client, slow_prompt("after-crash-1", seconds=0, steps=1))
            second = queue(client, slow_prompt("after-crash-2", seconds=0, steps=1))
            numbers = [item[0] for item in client.get("/queue").json()["queue_pending"]]
        server.kill()

        server.start()
        with server.http() as client:
            crashed = wait_history(client, cut_short)
            assert crashed["status"]["status_str"] == "error" and crashed["status"]["completed"] is False
            events = dict(crashed["status"]["messages"])
            assert events["execution_error"]["exception_message"] == CRASH_MESSAGE
            assert events["execution_error"]["exception_type"] == "ServerStopped"
            assert "execution_start" in events
            for prompt_id, label in ((first, "after-crash-1"), (second, "after-crash-2")):
                entry = wait_history(client, prompt_id)
                assert entry["status"]["status_str"] == "success" and entry["outputs"]["1"]["text"] == [label]
            assert done in client.get("/history").json()  # history from before the crash is kept
            assert client.get(f"/api/jobs/{cut_short}").json()["status"] == "failed"
            later = client.post("/prompt", json={"prompt": slow_prompt("later", 0, 1)}).json()
            assert later["number"] > max(numbers)  # numbering continues across restarts
        assert "marked failed" in server.output()
    finally:
        server.kill()


def test_graceful_stop_keeps_pending_prompts(tmp_path: Path) -> None:
    server = HearthServer(tmp_path / "data").start()
    try:
        with server.http() as client:
            running = queue(client, slow_prompt("stopped-gracefully", seconds=30, steps=300))
            wait_running(client, running)
            pending = queue(client, slow_prompt("survives-stop", seconds=0, steps=1), front=True)
        server.stop()
        # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught, as a well-behaved process does.
        assert server.proc is not None and server.proc.returncode in (0, -signal.SIGTERM)

        server.start()
        with server.http() as client:
            entry = wait_history(client, pending)
            assert entry["status"]["status_str"] == "success"
            stopped = wait_history(client, running)
            # The shutdown interrupted it; history says so rather than pretending it ran.
            assert "execution_interrupted" in dict(stopped["status"]["messages"])
            assert client.get("/queue").json() == {"queue_running": [], "queue_pending": []}
    finally:
        server.kill()
