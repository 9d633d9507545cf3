"""The server's execution events stay linear in graph size: progress_state is coalesced, and built for no one never."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from hearth.web import events
from hearth.web.events import ExecutionEvents


class Hub:
    """The EventHub surface ExecutionEvents uses, recording what would be sent; timers run when asked."""

    def __init__(self, listening: bool) -> None:
        self.is_listening = listening
        self.sent: list[tuple[str, Any]] = []
        self.timers: list[Callable[[], None]] = []

    def listening(self, sid: str | None) -> bool:
        return self.is_listening

    def publish(self, event: str, data: Any, sid: str | None = None) -> None:
        if self.is_listening:
            self.sent.append((event, data))

    def publish_text(self, text: str, kind: str, sid: str | None = None) -> None:
        if self.is_listening:
            self.sent.append((kind, json.loads(text)["data"]))

    def publish_with(self, build: Any, kind: str, sid: str | None) -> None:
        pass

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        self.timers.append(fn)

    def fire(self) -> None:
        timers, self.timers = self.timers, []
        for fn in timers:
            fn()


def run_chain(emit: Callable[[str, dict[str, Any]], None], n: int, prompt: str = "p1") -> None:
    emit("execution_start", {"prompt_id": prompt})
    for i in range(n):
        emit("executing", {"node": str(i), "display_node": str(i), "prompt_id": prompt})
        emit("executed", {"node": str(i), "display_node": str(i), "output": {}, "prompt_id": prompt})
    emit("executing", {"node": None, "prompt_id": prompt})
    emit("execution_success", {"prompt_id": prompt})


def states(hub: Hub) -> list[dict[str, Any]]:
    return [data for event, data in hub.sent if event == "progress_state"]


def test_progress_state_is_coalesced_and_the_last_one_lists_every_node_finished() -> None:
    hub = Hub(listening=True)
    run_chain(ExecutionEvents(hub, lambda prompt: "sid").emit, 2000)
    sent = states(hub)
    # Once per interval at most (the first change goes at once), plus the final one: not one per event.
    assert 1 <= len(sent) <= 3, len(sent)
    final = sent[-1]
    assert len(final["nodes"]) == 2000 and all(node["state"] == "finished" for node in final["nodes"].values())
    kinds = [event for event, _ in hub.sent]
    assert kinds.index("progress_state", len(kinds) - 4) < kinds.index("execution_success")


def test_a_timer_sends_the_changes_made_since_the_last_state() -> None:
    hub = Hub(listening=True)
    emit = ExecutionEvents(hub, lambda prompt: "sid").emit
    emit("execution_start", {"prompt_id": "p"})
    emit("executing", {"node": "1", "prompt_id": "p"})  # sent at once: nothing was sent before
    emit("progress", {"node": "1", "value": 3, "max": 10, "prompt_id": "p"})  # within the interval: scheduled
    assert [s["nodes"]["1"]["value"] for s in states(hub)] == [0]
    assert len(hub.timers) == 1
    emit("progress", {"node": "1", "value": 4, "max": 10, "prompt_id": "p"})
    assert len(hub.timers) == 1  # one pending send covers every change until it fires
    hub.fire()
    assert [s["nodes"]["1"]["value"] for s in states(hub)] == [0, 4]
    hub.fire()
    assert len(states(hub)) == 2  # nothing changed since: nothing sent


def test_without_a_listener_no_state_is_built(monkeypatch: Any) -> None:
    built = []
    monkeypatch.setattr(events, "event_text", lambda event, data: built.append(event) or "")
    hub = Hub(listening=False)
    started = time.perf_counter()
    run_chain(ExecutionEvents(hub, lambda prompt: None).emit, 20000)
    assert hub.sent == [] and built == []
    assert hub.timers == []
    assert time.perf_counter() - started < 5  # linear: a per-event walk of 20,000 nodes would take minutes
