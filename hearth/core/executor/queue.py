"""The prompt queue (priority, front, delete, clear), the history of finished prompts, and the worker between them.

Queue items and history entries have ComfyUI's shapes: an item is ``[number, prompt_id, prompt, extra_data,
outputs_to_execute]``; a history entry is ``{prompt, outputs, status: {status_str, completed, messages}, meta}``.
A prompt that fails is recorded with its error and the worker goes on with the next one.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hearth.core.executor.execution import Emit, ExecutionResult, Executor
from hearth.core.executor.graph import parse_prompt


@dataclass
class QueueItem:
    number: float
    prompt_id: str
    prompt: Mapping[str, Any]
    extra_data: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    # The prompt as parsed and validated when it was queued, so the worker does not parse it again; a prompt
    # recovered from storage has none and is parsed when it runs.
    nodes: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    def as_list(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


class History:
    """Finished prompts, newest last, bounded to ``max_items``."""

    def __init__(self, max_items: int = 10000) -> None:
        self.max_items = max_items
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, item: QueueItem, result: ExecutionResult, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        status_str = "success" if result.status == "success" else "error"
        entry = {
            "prompt": item.as_list(),
            "outputs": dict(result.outputs),
            "status": {"status_str": status_str, "completed": result.status == "success",
                       "messages": [[event, data] for event, data in result.messages]},
            "meta": dict(meta or {}),
        }
        with self._lock:
            self._entries[item.prompt_id] = entry
            while len(self._entries) > self.max_items:
                self._entries.popitem(last=False)
        return entry

    def get(self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1) -> dict[str, Any]:
        """One entry by id, or a page: the newest ``max_items`` by default, or from ``offset`` (oldest is 0)."""
        with self._lock:
            if prompt_id is not None:
                return {prompt_id: self._entries[prompt_id]} if prompt_id in self._entries else {}
            items = list(self._entries.items())
        count = len(items) if max_items is None else max_items
        if offset < 0:
            offset = max(0, len(items) - count)
        return dict(items[offset:offset + count])

    def delete(self, prompt_ids: Iterable[str]) -> None:
        with self._lock:
            for prompt_id in prompt_ids:
                self._entries.pop(prompt_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class PromptQueue:
    """Pending prompts ordered by number (lower first); ``front=True`` goes ahead of everything pending."""

    def __init__(self, history: History | None = None) -> None:
        self.history = history if history is not None else History()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, QueueItem]] = []
        self._seq = itertools.count()
        self._number = itertools.count()
        self._running: dict[str, QueueItem] = {}

    def put(self, prompt: Mapping[str, Any], outputs: list[str], *, prompt_id: str | None = None,
            extra_data: Mapping[str, Any] | None = None, number: float | None = None,
            front: bool = False, nodes: Mapping[str, Any] | None = None) -> QueueItem:
        """Queue ``prompt``; ``nodes`` is its :func:`parse_prompt` result when the caller already parsed it."""
        with self._cond:
            if front:
                lowest = min((n for n, _, _ in self._heap), default=0)
                number = min(lowest, 0) - 1 if number is None else number
            elif number is None:
                number = next(self._number)
            item = QueueItem(number, prompt_id or str(uuid.uuid4()), prompt, dict(extra_data or {}), list(outputs),
                             nodes)
            heapq.heappush(self._heap, (number, next(self._seq), item))
            self._cond.notify()
        return item

    def get(self, timeout: float | None = None) -> QueueItem | None:
        """Take the next prompt and mark it running; ``None`` if nothing arrives within ``timeout``."""
        with self._cond:
            while True:
                if self._heap:
                    _, _, item = heapq.heappop(self._heap)
                    self._running[item.prompt_id] = item
                    return item
                if not self._cond.wait(timeout):
                    return None

    def task_done(self, item: QueueItem, result: ExecutionResult, meta: Mapping[str, Any] | None = None) -> None:
        with self._cond:
            self._running.pop(item.prompt_id, None)
        self.history.add(item, result, meta)
        with self._cond:
            self._cond.notify_all()

    def delete(self, prompt_ids: Iterable[str]) -> int:
        """Remove pending prompts by id; returns how many were removed. Running prompts are not touched."""
        wanted = set(prompt_ids)
        with self._cond:
            kept = [entry for entry in self._heap if entry[2].prompt_id not in wanted]
            removed = len(self._heap) - len(kept)
            self._heap = kept
            heapq.heapify(self._heap)
        return removed

    def clear(self) -> int:
        with self._cond:
            removed = len(self._heap)
            self._heap.clear()
        return removed

    def pending(self) -> list[QueueItem]:
        with self._cond:
            return [item for _, _, item in sorted(self._heap, key=lambda e: (e[0], e[1]))]

    def running(self) -> list[QueueItem]:
        with self._cond:
            return list(self._running.values())

    def remaining(self) -> int:
        with self._cond:
            return len(self._heap) + len(self._running)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is pending or running."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._heap and not self._running, timeout)


class Worker:
    """Takes prompts off a queue and executes them, one at a time, in a background thread."""

    def __init__(self, queue: PromptQueue, executor: Executor, emit: Emit | None = None,
                 on_done: Callable[[QueueItem, ExecutionResult], None] | None = None) -> None:
        self.queue = queue
        self.executor = executor
        self.emit = emit
        self.on_done = on_done
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def process_one(self, timeout: float | None = None) -> ExecutionResult | None:
        item = self.queue.get(timeout)
        if item is None:
            return None
        try:
            nodes = item.nodes if item.nodes is not None else parse_prompt(item.prompt)
            item.nodes = None  # a finished prompt's history keeps the JSON, not the parsed graph
            result = self.executor.execute(nodes, item.outputs, prompt_id=item.prompt_id, extra_data=item.extra_data,
                                           emit=self.emit, original=item.prompt)
        except Exception as exc:  # the queue goes on whatever one prompt does
            result = ExecutionResult(item.prompt_id, "error", error={
                "prompt_id": item.prompt_id, "exception_message": str(exc),
                "exception_type": type(exc).__name__, "traceback": [], "node_id": None, "node_type": None})
            result.messages.append(("execution_error", result.error))
        self.queue.task_done(item, result)
        if self.on_done is not None:
            self.on_done(item, result)
        return result

    def start(self) -> Worker:
        self._thread = threading.Thread(target=self._loop, name="hearth-worker", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.process_one(timeout=0.1)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.executor.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)
