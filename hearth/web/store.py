"""The queue and history kept in SQLite, so a restart keeps pending prompts and history and a crash loses one prompt.

:class:`PersistentQueue` and :class:`PersistentHistory` are the executor's :class:`PromptQueue` and
:class:`History` with every change written through to one SQLite file (WAL). On open, prompts found ``running``
belonged to a process that died mid-prompt: they are recorded as failed in history with a message that says so,
and the pending ones go back on the queue in their order.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one server per data folder is then up to the user
    fcntl = None  # type: ignore[assignment]

from hearth.core.executor.execution import ExecutionResult
from hearth.core.executor.queue import History, PromptQueue, QueueItem

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    prompt_id TEXT PRIMARY KEY,
    number REAL NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running')),
    prompt TEXT NOT NULL,
    extra_data TEXT NOT NULL,
    outputs TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    entry TEXT NOT NULL,
    started REAL,
    finished REAL NOT NULL
);
"""

CRASH_MESSAGE = ("the server stopped while this prompt was running (the process exited or crashed); "
                 "it did not finish. Queue it again to run it.")


class DataFolderInUse(Exception):
    """Another server holds the data folder: two workers on one queue would run every prompt twice."""


def lock_data_folder(folder: Path) -> IO[str]:
    """Hold ``<folder>/hearth.lock`` for the life of the process (the OS drops the lock if it dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / "hearth.lock", "a+")  # noqa: SIM115 - held open on purpose until the server stops
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise DataFolderInUse(f"{folder} is in use by another comfy serve (pid {owner}); stop it or pass "
                                  f"another --data folder") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class Database:
    """One SQLite connection shared by the request handlers and the worker thread, behind a lock.

    Writes are small and few per prompt, so one connection with a lock is simpler and faster than a pool.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across a process crash in WAL mode; only a power cut may lose the last commits.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.conn.execute(sql, tuple(params)).fetchall()

    def transaction(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    self.conn.execute(sql, params)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _dumps(value: Any) -> str:
    # default=str: extra_data and UI outputs come from clients and nodes; an odd value must not lose the prompt.
    return json.dumps(value, separators=(",", ":"), default=str)


class PersistentHistory(History):
    """History entries as ComfyUI shapes them, stored in SQLite, bounded to ``max_items`` (oldest dropped)."""

    def __init__(self, db: Database, max_items: int = 10000) -> None:
        super().__init__(max_items)
        self.db = db

    def add(self, item: QueueItem, result: ExecutionResult, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if meta is None:
            meta = {node_id: {"node_id": node_id, "display_node": node_id, "parent_node": None,
                              "real_node_id": node_id} for node_id in result.outputs}
        entry = super().add(item, result, meta)
        super().clear()  # the rows below are the record; the base class only shapes the entry
        self.write(item.prompt_id, entry)
        return entry

    def write(self, prompt_id: str, entry: dict[str, Any], started: float | None = None) -> None:
        if started is None:
            started = next((data["timestamp"] / 1000 for event, data in entry["status"]["messages"]
                            if event == "execution_start" and "timestamp" in data), None)
        self.db.transaction([
            ("DELETE FROM history WHERE prompt_id = ?", (prompt_id,)),
            ("INSERT INTO history (prompt_id, status, entry, started, finished) VALUES (?, ?, ?, ?, ?)",
             (prompt_id, entry["status"]["status_str"], _dumps(entry), started, time.time())),
            ("DELETE FROM queue WHERE prompt_id = ?", (prompt_id,)),
            ("DELETE FROM history WHERE seq <= (SELECT MAX(seq) FROM history) - ?", (self.max_items,)),
        ])

    def get(self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1) -> dict[str, Any]:
        """One entry by id, or a page: the newest ``max_items`` by default, or from ``offset`` (oldest is 0)."""
        if prompt_id is not None:
            rows = self.db.execute("SELECT prompt_id, entry FROM history WHERE prompt_id = ?", (prompt_id,))
            return {pid: json.loads(entry) for pid, entry in rows}
        total = len(self)
        count = total if max_items is None else max(0, max_items)
        if offset < 0:
            offset = max(0, total - count)
        rows = self.db.execute("SELECT prompt_id, entry FROM history ORDER BY seq LIMIT ? OFFSET ?", (count, offset))
        return {pid: json.loads(entry) for pid, entry in rows}

    def records(self) -> list[tuple[str, str, float | None, float, dict[str, Any]]]:
        """(prompt_id, status, started, finished, entry) for every entry, oldest first: what /jobs lists."""
        rows = self.db.execute("SELECT prompt_id, status, started, finished, entry FROM history ORDER BY seq")
        return [(pid, status, started, finished, json.loads(entry)) for pid, status, started, finished, entry in rows]

    def delete(self, prompt_ids: Iterable[str]) -> None:
        ids = [(str(p),) for p in prompt_ids]
        with self.db.lock:
            self.db.conn.executemany("DELETE FROM history WHERE prompt_id = ?", ids)

    def clear(self) -> None:
        self.db.execute("DELETE FROM history")

    def __contains__(self, prompt_id: object) -> bool:
        return bool(self.db.execute("SELECT 1 FROM history WHERE prompt_id = ?", (str(prompt_id),)))

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM history")[0][0])


class PersistentQueue(PromptQueue):
    """The executor's prompt queue, with each put, start, finish, delete and clear written to SQLite."""

    def __init__(self, db: Database, history: PersistentHistory) -> None:
        super().__init__(history)
        self.db = db
        self.history: PersistentHistory = history
        self._seq_db = itertools.count()
        self._numbers = itertools.count()
        self.started: dict[str, float] = {}
        self.recovered: list[str] = []  # prompts found running at open, now recorded as failed
        self._recover()

    def _recover(self) -> None:
        rows = self.db.execute(
            "SELECT prompt_id, number, seq, state, prompt, extra_data, outputs, created, started FROM queue "
            "ORDER BY number, seq")
        top = max((int(r[2]) for r in rows), default=-1)
        self._seq_db = itertools.count(top + 1)
        self._numbers = itertools.count(int(max((r[1] for r in rows), default=-1)) + 1)
        for prompt_id, number, _, state, prompt, extra_data, outputs, _created, started in rows:
            item = QueueItem(number, prompt_id, json.loads(prompt), json.loads(extra_data), json.loads(outputs))
            if state == "running":
                self._record_crash(item, started)
                continue
            super().put(item.prompt, item.outputs, prompt_id=prompt_id, extra_data=item.extra_data, number=number)
        # Numbers keep rising across restarts, as clients sort by them.
        last = self.db.execute("SELECT entry FROM history ORDER BY seq DESC LIMIT 1")
        if last:
            previous = json.loads(last[0][0])["prompt"][0]
            if isinstance(previous, (int, float)):
                floor = max(int(previous) + 1, next(self._numbers))
                self._numbers = itertools.count(floor)

    def _record_crash(self, item: QueueItem, started: float | None) -> None:
        if item.prompt_id in self.history:  # finished, but the process died before the queue row was removed
            self.db.execute("DELETE FROM queue WHERE prompt_id = ?", (item.prompt_id,))
            return
        now = int(time.time() * 1000)
        error = {"prompt_id": item.prompt_id, "node_id": None, "node_type": None, "executed": [],
                 "exception_message": CRASH_MESSAGE, "exception_type": "ServerStopped", "traceback": [],
                 "current_inputs": {}, "current_outputs": [], "timestamp": now}
        result = ExecutionResult(item.prompt_id, "error", error=error)
        if started is not None:
            result.messages.append(("execution_start", {"prompt_id": item.prompt_id,
                                                        "timestamp": int(started * 1000)}))
        result.messages.append(("execution_error", error))
        entry = History.add(self.history, item, result, {})
        History.clear(self.history)
        self.history.write(item.prompt_id, entry, started)
        self.recovered.append(item.prompt_id)

    def contains(self, prompt_id: str) -> bool:
        return bool(self.db.execute("SELECT 1 FROM queue WHERE prompt_id = ?", (prompt_id,)))

    def put(self, prompt: Mapping[str, Any], outputs: list[str], *, prompt_id: str | None = None,
            extra_data: Mapping[str, Any] | None = None, number: float | None = None,
            front: bool = False) -> QueueItem:
        if number is None and not front:
            number = next(self._numbers)
        item = super().put(prompt, outputs, prompt_id=prompt_id, extra_data=extra_data, number=number, front=front)
        now = time.time()
        self.db.execute(
            "INSERT OR REPLACE INTO queue (prompt_id, number, seq, state, prompt, extra_data, outputs, created) "
            "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
            (item.prompt_id, item.number, next(self._seq_db), _dumps(item.prompt), _dumps(item.extra_data),
             _dumps(item.outputs), now))
        return item

    def get(self, timeout: float | None = None) -> QueueItem | None:
        item = super().get(timeout)
        if item is not None:
            now = time.time()
            self.started[item.prompt_id] = now
            self.db.execute("UPDATE queue SET state = 'running', started = ? WHERE prompt_id = ?",
                            (now, item.prompt_id))
        return item

    def task_done(self, item: QueueItem, result: ExecutionResult, meta: Mapping[str, Any] | None = None) -> None:
        # History.add removes the queue row in the same transaction: a crash leaves the prompt in one place.
        super().task_done(item, result, meta)
        self.started.pop(item.prompt_id, None)

    def delete(self, prompt_ids: Iterable[str]) -> int:
        wanted = [str(p) for p in prompt_ids]
        removed = super().delete(wanted)
        with self.db.lock:
            self.db.conn.executemany("DELETE FROM queue WHERE prompt_id = ? AND state = 'pending'",
                                     [(p,) for p in wanted])
        return removed

    def clear(self) -> int:
        removed = super().clear()
        self.db.execute("DELETE FROM queue WHERE state = 'pending'")
        return removed
