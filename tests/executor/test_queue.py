"""The prompt queue: priority and front, delete and clear, history, and a worker that survives failures."""

from __future__ import annotations

from typing import Any

import toy_nodes

from hearth.core.executor import Executor
from hearth.core.executor.queue import History, PromptQueue, Worker


def prompt(value: int, fail: bool = False) -> dict[str, Any]:
    kind = "Fail" if fail else "Add"
    return {"1": {"class_type": "Int", "inputs": {"value": value}},
            "2": {"class_type": kind, "inputs": {"value": ["1", 0]} if fail else {"a": ["1", 0], "b": 1}},
            "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}}}


def test_order_is_number_then_submission_and_front_jumps_ahead() -> None:
    queue = PromptQueue()
    first = queue.put(prompt(1), ["3"], prompt_id="first")
    queue.put(prompt(2), ["3"], prompt_id="second")
    queue.put(prompt(3), ["3"], prompt_id="urgent", front=True)
    queue.put(prompt(4), ["3"], prompt_id="low", number=100)
    assert [i.prompt_id for i in queue.pending()] == ["urgent", "first", "second", "low"]
    assert first.as_list() == [0, "first", prompt(1), {}, ["3"]]
    assert queue.get().prompt_id == "urgent"
    assert [i.prompt_id for i in queue.running()] == ["urgent"]
    assert queue.remaining() == 4


def test_delete_and_clear() -> None:
    queue = PromptQueue()
    for name in ("a", "b", "c"):
        queue.put(prompt(1), ["3"], prompt_id=name)
    assert queue.delete(["b", "zzz"]) == 1
    assert [i.prompt_id for i in queue.pending()] == ["a", "c"]
    assert queue.clear() == 2 and queue.pending() == [] and queue.get(timeout=0.01) is None


def test_worker_records_history_and_goes_on_after_a_failure() -> None:
    queue = PromptQueue()
    events: list[tuple[str, Any]] = []
    worker = Worker(queue, Executor(toy_nodes.registry()), emit=lambda e, d: events.append((e, d)))
    queue.put(prompt(1, fail=True), ["3"], prompt_id="bad")
    queue.put(prompt(5), ["3"], prompt_id="good", extra_data={"client_id": "c1"})
    worker.start()
    try:
        assert queue.wait_idle(timeout=10)
    finally:
        worker.stop()
    history = queue.history.get()
    assert list(history) == ["bad", "good"]
    bad, good = history["bad"], history["good"]
    assert bad["status"]["status_str"] == "error" and not bad["status"]["completed"]
    assert [m[0] for m in bad["status"]["messages"]] == ["execution_start", "execution_cached", "execution_error"]
    assert good["status"] == {"status_str": "success", "completed": True,
                              "messages": good["status"]["messages"]}
    assert good["outputs"] == {"3": {"value": [6]}}
    assert good["prompt"] == [1, "good", prompt(5), {"client_id": "c1"}, ["3"]]
    assert ("execution_error", bad["status"]["messages"][-1][1]) in events


def test_history_is_bounded_and_pages() -> None:
    history = History(max_items=3)
    queue = PromptQueue(history)
    worker = Worker(queue, Executor(toy_nodes.registry()))
    for i in range(5):
        queue.put(prompt(i), ["3"], prompt_id=f"p{i}")
        worker.process_one(timeout=1)
    assert list(history.get()) == ["p2", "p3", "p4"]
    assert list(history.get(max_items=2)) == ["p3", "p4"]
    assert list(history.get(max_items=1, offset=1)) == ["p3"]
    assert history.get("p4")["p4"]["outputs"] == {"3": {"value": [5]}}
    assert history.get("p0") == {}
    history.delete(["p3"])
    assert list(history.get()) == ["p2", "p4"]
    history.clear()
    assert len(history) == 0


def test_a_prompt_that_cannot_even_parse_is_recorded_not_fatal() -> None:
    queue = PromptQueue()
    worker = Worker(queue, Executor(toy_nodes.registry()))
    queue.put({"1": "not a node"}, ["1"], prompt_id="broken")
    queue.put(prompt(1), ["3"], prompt_id="fine")
    assert worker.process_one(timeout=1).status == "error"
    assert worker.process_one(timeout=1).ok
    assert queue.history.get("broken")["broken"]["status"]["status_str"] == "error"
