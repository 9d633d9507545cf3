"""The server path does each prompt's work once: parsed at POST (not again in the worker), dumped once when queued.

A 10,000-node prompt used to be parsed twice and walked through ``storable`` twice on its way to the history row;
these tests pin that the worker runs the graph the route parsed and that the history row reuses the queued text,
while a recovered prompt (no parsed graph) and a prompt changed after it was queued still run and store correctly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from hearth.core.executor import Executor, parse_prompt
from hearth.core.executor import queue as queue_module
from hearth.core.executor.queue import Worker
from hearth.core.node_registry import NodeRegistry
from hearth.web import store
from hearth.web.store import Database, PersistentHistory, PersistentQueue


class Const:
    CATEGORY = "test"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT", {"default": 0, "min": -(2**40), "max": 2**40})}}

    def run(self, value: int) -> tuple[int]:
        return (value,)


class Add:
    CATEGORY = "test"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"a": ("INT",), "b": ("INT", {"default": 1})}}

    def run(self, a: int, b: int) -> tuple[int]:
        return (a + b,)


class Sink:
    CATEGORY = "test"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT",), "label": ("STRING", {"default": ""})}}

    def run(self, value: int, label: str) -> dict[str, Any]:
        return {"ui": {"value": [value], "label": [label], "ratio": [value / 3]}}


def chain(n: int, label: str = "snow ☃ and \"quotes\"") -> dict[str, Any]:
    prompt: dict[str, Any] = {"0": {"class_type": "Const", "inputs": {"value": 7}}}
    for i in range(1, n - 1):
        prompt[str(i)] = {"class_type": "Add", "inputs": {"a": [str(i - 1), 0], "b": 1}}
    prompt[str(n - 1)] = {"class_type": "Sink", "inputs": {"value": [str(n - 2), 0], "label": label}}
    return prompt


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Database, PersistentQueue, Worker]:
    db = Database(tmp_path / "hearth.db")
    history = PersistentHistory(db)
    queue = PersistentQueue(db, history)
    worker = Worker(queue, Executor(NodeRegistry.from_classes({"Const": Const, "Add": Add, "Sink": Sink})))
    yield db, queue, worker
    db.close()


def queue_checked(queue: PersistentQueue, worker: Worker, prompt: dict[str, Any], prompt_id: str) -> None:
    """What POST /prompt does: parse once, validate, queue the parsed graph with the prompt."""
    nodes = parse_prompt(prompt)
    validation = worker.executor.validator.validate(nodes, None)
    assert validation.ok
    queue.put(prompt, validation.outputs, prompt_id=prompt_id, extra_data={"client_id": "c1"}, nodes=nodes)


def stored_row(db: Database, prompt_id: str) -> str:
    return db.execute("SELECT entry FROM history WHERE prompt_id = ?", (prompt_id,))[0][0]


def test_the_worker_runs_the_graph_parsed_when_the_prompt_was_queued(parts, monkeypatch) -> None:
    db, queue, worker = parts
    queue_checked(queue, worker, chain(50), "p1")

    def parse_again(prompt: Any) -> Any:
        raise AssertionError("the worker parsed a prompt the route had already parsed")

    monkeypatch.setattr(queue_module, "parse_prompt", parse_again)
    result = worker.process_one(timeout=1)
    assert result is not None and result.status == "success", result and result.error
    assert result.outputs["49"]["value"] == [7 + 48]
    assert queue.history.get("p1")["p1"]["status"]["completed"] is True


def test_a_prompt_without_a_parsed_graph_is_parsed_when_it_runs(parts) -> None:
    """A prompt recovered from the database after a restart has only its JSON."""
    db, queue, worker = parts
    prompt = chain(5)
    queue.put(prompt, ["4"], prompt_id="recovered")
    result = worker.process_one(timeout=1)
    assert result is not None and result.status == "success"
    assert result.outputs["4"]["value"] == [7 + 3]


def test_the_history_row_reuses_the_queued_text_and_reads_back_exactly_as_before(parts) -> None:
    db, queue, worker = parts
    prompt = chain(20)
    queue_checked(queue, worker, prompt, "p2")
    worker.process_one(timeout=1)
    row = stored_row(db, "p2")
    entry = queue.history.get("p2")["p2"]
    # Byte for byte what walking the whole entry through storable() wrote before.
    assert row == json.dumps(store.storable(entry, store.STORED_DEPTH), separators=(",", ":"), allow_nan=False)
    assert entry["prompt"][2] == prompt and entry["prompt"][3] == {"client_id": "c1"}
    assert list(entry) == ["prompt", "outputs", "status", "meta"]
    assert entry["outputs"]["19"]["label"] == ["snow ☃ and \"quotes\""]
    assert queue.history.prompt_texts == {}  # nothing kept once the prompt is history


def test_history_shows_the_prompt_as_it_was_queued_even_if_something_changed_it_since(parts) -> None:
    """A node or plugin holding the prompt dict may change it mid-run; the record is what was queued, and readable."""
    db, queue, worker = parts
    prompt = chain(5)
    queue_checked(queue, worker, prompt, "p3")
    prompt["4"]["inputs"]["label"] = math.nan
    prompt["extra"] = {"object": object()}
    worker.process_one(timeout=1)
    entry = queue.history.get("p3")["p3"]
    assert entry["prompt"][2] == chain(5)


def test_an_unchecked_prompt_with_nan_or_objects_is_repaired_not_lost(parts) -> None:
    """put() without the route's checks (a plugin queueing directly) still writes a row that reads back."""
    db, queue, worker = parts
    prompt = chain(5)
    prompt["4"]["inputs"]["note"] = math.inf
    queue.put(prompt, ["4"], prompt_id="p4")
    stored = json.loads(db.execute("SELECT prompt FROM queue WHERE prompt_id = 'p4'")[0][0])
    assert stored["4"]["inputs"]["note"] is None


def test_deleted_and_cleared_prompts_leave_no_stored_text_behind(parts) -> None:
    db, queue, worker = parts
    for name in ("a", "b", "c"):
        queue.put(chain(3), ["2"], prompt_id=name)
    queue.delete(["a"])
    assert set(queue.history.prompt_texts) == {"b", "c"}
    queue.clear()
    assert queue.history.prompt_texts == {}


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("data", [
    {"node": "1", "output": {"text": ["plain"], "n": [1, 2.5, -3]}},
    {"text": "lone \ud800 surrogate"},
    {"key \udfff": 1},
    {"n": 2**70, "m": -(2**65)},
    {"f": [math.nan, math.inf, -math.inf]},
    {"o": object(), "s": {1, 2}},
    {"deep": deep(5000)},
    {"text": "a backslash and u-d-8-0-0 as characters: \\ud800"},
    {"digits": "12345678901234567890123"},
    {"emoji": "\U0001f600 and \u00e9"},
])
def test_event_text_is_what_the_careful_walk_makes(data: dict[str, Any]) -> None:
    """Events skip storable()'s walk when json.dumps already gives what it would give; the text is the same."""
    from hearth.web.boundary import storable
    from hearth.web.events import event_text

    careful = json.dumps(storable({"type": "executed", "data": data}, max_int=None), allow_nan=False)
    if "o" in data:  # an object's text names its address: compare the shape
        assert json.loads(event_text("executed", data)).keys() == json.loads(careful).keys()
    else:
        assert event_text("executed", data) == careful


def test_a_burst_of_events_from_the_worker_wakes_the_loop_once_and_keeps_its_order() -> None:
    import asyncio
    import threading

    from hearth.web.events import EventHub

    delivered: list[str] = []
    wakeups = 0

    async def main() -> None:
        nonlocal wakeups
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counting(*args: Any) -> Any:
            nonlocal wakeups
            wakeups += 1
            return original(*args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        hub = EventHub()
        hub.bind(loop)
        hub._deliver = lambda text, kind, sid: delivered.append(text)  # type: ignore[method-assign]
        ready = threading.Event()

        def worker() -> None:
            for i in range(1000):
                hub.publish_text(str(i), "executing", None)
            ready.set()

        thread = threading.Thread(target=worker)
        thread.start()
        while not ready.is_set() or hub._inbox:
            await asyncio.sleep(0.01)
        thread.join()
        await asyncio.sleep(0.01)

    asyncio.run(main())
    assert delivered == [str(i) for i in range(1000)]
    assert wakeups < 100  # one per burst the loop had not yet drained, not one per message


def test_a_burst_larger_than_the_backlog_reaches_a_reading_client_whole() -> None:
    """A worker emitting faster than one loop turn delivers must not fill a reading client's backlog and get it
    dropped: delivery yields to the clients' pumps between batches."""
    import asyncio
    import threading

    from hearth.web.events import BACKLOG, EventHub

    class Socket:
        def __init__(self) -> None:
            self.received: list[str] = []
            self.closed = False

        async def send_text(self, text: str) -> None:
            self.received.append(text)

        async def close(self, code: int) -> None:
            self.closed = True

    socket = Socket()
    total = 3 * BACKLOG

    async def main() -> None:
        hub = EventHub()
        hub.bind(asyncio.get_running_loop())
        client = hub.add("reader", socket)  # type: ignore[arg-type]
        pump = asyncio.ensure_future(hub.pump(client))
        thread = threading.Thread(target=lambda: [hub.publish_text(str(i), "executing", "reader")
                                                  for i in range(total)])
        thread.start()
        while thread.is_alive() or hub._inbox or not client.queue.empty():
            await asyncio.sleep(0.005)
        pump.cancel()

    asyncio.run(main())
    assert not socket.closed and socket.received == [str(i) for i in range(total)]
