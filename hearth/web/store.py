"""The queue and history kept in SQLite, so a restart keeps pending prompts and history and a crash loses one prompt.

:class:`PersistentQueue` and :class:`PersistentHistory` are the executor's :class:`PromptQueue` and
:class:`History` with every change written through to one SQLite file (WAL). On open, prompts found ``running``
belonged to a process that died mid-prompt: they are recorded as failed in history with a message that says so,
and the pending ones go back on the queue in their order.

Stored data never stops the server: on open every row is read as the API will read it, and a row that cannot be
(bad JSON, ``Infinity``, a lone surrogate, a wrong shape: written by an older version or by hand) is moved to the
``quarantine`` table, kept for the admin, and reported. A file that is not a database at all is moved aside.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one server per data folder is then up to the user
    fcntl = None  # type: ignore[assignment]

from hearth.core.executor.execution import ExecutionResult
from hearth.core.executor.queue import History, PromptQueue, QueueItem
from hearth.web.boundary import MAX_DEPTH, MAX_NUMBER, BadRequest, is_text, parse_json, storable

log = logging.getLogger("hearth.web")
# A history entry wraps the prompt and extra_data the boundary accepted a few levels deeper.
STORED_DEPTH = MAX_DEPTH + 8

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
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    prompt_id TEXT,
    reason TEXT NOT NULL,
    row TEXT NOT NULL,
    moved REAL NOT NULL
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
        self.quarantined: list[Quarantined] = []
        try:
            self.conn = self._open(path)
        except sqlite3.DatabaseError as exc:  # not a database (or damaged beyond reading): keep it, start empty
            aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    os.replace(f"{path}{suffix}", f"{aside}{suffix}")
            self.conn = self._open(path)
            self.quarantined.append(Quarantined("database", None, f"{exc}; the file was moved to {aside}"))
        self.quarantined += quarantine_unreadable(self)
        for note in self.quarantined:
            log.warning("quarantined %s", note.describe())

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        # Invalid UTF-8 written by hand must reach the row checks as text they refuse, not fail the read.
        conn.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across a process crash in WAL mode; only a power cut may lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

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
    # Node outputs may hold NaN, odd objects or lone surrogates; storable() repairs them so the row reads back.
    return json.dumps(storable(value, STORED_DEPTH), separators=(",", ":"), allow_nan=False)


def _dumps_checked(value: Any) -> str:
    """A value that already passed the request checks (a queued prompt), dumped without walking it again."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):  # changed since it was checked (a plugin's handler kept a reference): repair
        return _dumps(value)


def _loads(text: str) -> Any:
    """A stored JSON column, read as strictly as it was written."""
    return parse_json(text, max_depth=STORED_DEPTH)


# -- quarantine ------------------------------------------------------------------------------------------------


@dataclass
class Quarantined:
    """One stored row that could not be read, moved to the ``quarantine`` table."""

    source: str
    prompt_id: str | None
    reason: str

    def describe(self) -> str:
        what = f"{self.source} row" + (f" of prompt {self.prompt_id}" if self.prompt_id else "")
        if self.source == "database":
            return f"the database: {self.reason}"
        return f"{what}: {self.reason} (kept in the quarantine table)"


class Unreadable(Exception):
    pass


def _number(value: Any, name: str, bound: float = MAX_NUMBER) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > bound:
        raise Unreadable(f"{name} is {value!r:.40}, not a finite number within ±{bound:g}")


def _text_id(value: Any, name: str) -> str:
    # Looser than the boundary's identifier(): older versions took any prompt_id, and a long one still reads back.
    if not isinstance(value, str) or not value or not is_text(value):
        raise Unreadable(f"{name} is not Unicode text")
    return value


def _json_column(text: Any, name: str, shape: type) -> Any:
    if not isinstance(text, str):
        raise Unreadable(f"{name} is {type(text).__name__}, not JSON text")
    try:
        value = _loads(text)
    except BadRequest as exc:
        raise Unreadable(f"{name}: {exc.message} {exc.details}".strip()) from None
    if not isinstance(value, shape):
        raise Unreadable(f"{name} is {type(value).__name__}, not {shape.__name__}")
    return value


def check_queue_row(prompt_id: Any, number: Any, seq: Any, prompt: Any, extra_data: Any, outputs: Any,
                    started: Any) -> None:
    """Raise :class:`Unreadable` unless the queue row can go back on the queue and be listed by /queue."""
    _text_id(prompt_id, "prompt_id")
    _number(number, "number")
    if not isinstance(seq, int) or isinstance(seq, bool) or abs(seq) > MAX_NUMBER:
        raise Unreadable(f"seq is {seq!r:.40}, not an integer")
    _json_column(prompt, "prompt", dict)
    _json_column(extra_data, "extra_data", dict)
    _json_column(outputs, "outputs", list)
    if started is not None:
        _number(started, "started", float("inf"))


def check_history_row(prompt_id: Any, entry: Any, started: Any, finished: Any) -> None:
    """Raise :class:`Unreadable` unless /history and /jobs can answer with this row."""
    _text_id(prompt_id, "prompt_id")
    value = _json_column(entry, "entry", dict)
    item, outputs, status = value.get("prompt"), value.get("outputs"), value.get("status")
    if not isinstance(item, list) or len(item) < 5 or not isinstance(item[3], dict):
        raise Unreadable("entry.prompt is not [number, prompt_id, prompt, extra_data, outputs]")
    _number(item[0], "entry.prompt.number")
    if not isinstance(outputs, dict) or not all(isinstance(ui, dict) for ui in outputs.values()):
        raise Unreadable("entry.outputs is not an object of node outputs")
    if not isinstance(status, dict) or not isinstance(status.get("status_str"), str) \
            or not isinstance(status.get("messages"), list) \
            or not all(isinstance(m, list) and len(m) == 2 and isinstance(m[1], dict) for m in status["messages"]):
        raise Unreadable("entry.status is not {status_str, messages: [[event, data], ...]}")
    if started is not None:
        _number(started, "started", float("inf"))
    _number(finished, "finished", float("inf"))


def quarantine_unreadable(db: Database) -> list[Quarantined]:
    """Move every queue and history row the server could not read to ``quarantine``; return what was moved."""
    moved: list[Quarantined] = []
    checks = (("queue", "SELECT rowid, prompt_id, number, seq, prompt, extra_data, outputs, started FROM queue",
               check_queue_row),
              ("history", "SELECT rowid, prompt_id, entry, started, finished FROM history", check_history_row))
    for source, query, check in checks:
        for rowid, *columns in db.execute(query):
            try:
                check(*columns)
            except Unreadable as exc:
                reason = str(exc)
            except Exception as exc:  # any other surprise in a stored row is still the row's fault, not ours
                reason = f"{type(exc).__name__}: {exc}"
            else:
                continue
            prompt_id = storable(columns[0]) if isinstance(columns[0], str) else None
            row = db.execute(f"SELECT * FROM {source} WHERE rowid = ?", (rowid,))  # noqa: S608 - fixed names
            names = [d[0] for d in db.conn.execute(f"SELECT * FROM {source} LIMIT 0").description]  # noqa: S608
            # ensure_ascii and repr: the kept copy must be writable whatever the row held.
            kept = json.dumps(dict(zip(names, row[0], strict=True)), ensure_ascii=True, default=repr)
            db.transaction([
                ("INSERT INTO quarantine (source, prompt_id, reason, row, moved) VALUES (?, ?, ?, ?, ?)",
                 (source, prompt_id, storable(reason), kept, time.time())),
                (f"DELETE FROM {source} WHERE rowid = ?", (rowid,)),  # noqa: S608
            ])
            moved.append(Quarantined(source, prompt_id, storable(reason)))
    return moved


class PersistentHistory(History):
    """History entries as ComfyUI shapes them, stored in SQLite, bounded to ``max_items`` (oldest dropped)."""

    def __init__(self, db: Database, max_items: int = 10000) -> None:
        super().__init__(max_items)
        self.db = db
        # The JSON of each queued prompt, written once when it was queued: its history row reuses the text instead
        # of walking a prompt of thousands of nodes through storable() again.
        self.prompt_texts: dict[str, str] = {}

    def add(self, item: QueueItem, result: ExecutionResult, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if meta is None:
            meta = {node_id: {"node_id": node_id, "display_node": node_id, "parent_node": None,
                              "real_node_id": node_id} for node_id in result.outputs}
        entry = super().add(item, result, meta)
        super().clear()  # the rows below are the record; the base class only shapes the entry
        self.write(item.prompt_id, entry, prompt_text=self.prompt_texts.pop(item.prompt_id, None))
        return entry

    def write(self, prompt_id: str, entry: dict[str, Any], started: float | None = None,
              prompt_text: str | None = None) -> None:
        """Store ``entry``; ``prompt_text`` is the stored JSON of ``entry["prompt"][2]`` when the queue has it."""
        if started is None:
            started = next((data["timestamp"] / 1000 for event, data in entry["status"]["messages"]
                            if event == "execution_start" and "timestamp" in data), None)
        self.db.transaction([
            ("DELETE FROM history WHERE prompt_id = ?", (prompt_id,)),
            ("INSERT INTO history (prompt_id, status, entry, started, finished) VALUES (?, ?, ?, ?, ?)",
             (prompt_id, entry["status"]["status_str"], _entry_text(entry, prompt_text), started, time.time())),
            ("DELETE FROM queue WHERE prompt_id = ?", (prompt_id,)),
            ("DELETE FROM history WHERE seq <= (SELECT MAX(seq) FROM history) - ?", (self.max_items,)),
        ])

    def get(self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1) -> dict[str, Any]:
        """One entry by id, or a page: the newest ``max_items`` by default, or from ``offset`` (oldest is 0)."""
        if prompt_id is not None:
            rows = self.db.execute("SELECT prompt_id, entry FROM history WHERE prompt_id = ?", (prompt_id,))
            return dict(self._readable(rows))
        total = len(self)
        count = total if max_items is None else max(0, max_items)
        if offset < 0:
            offset = max(0, total - count)
        rows = self.db.execute("SELECT prompt_id, entry FROM history ORDER BY seq LIMIT ? OFFSET ?", (count, offset))
        return dict(self._readable(rows))

    @staticmethod
    def _readable(rows: Iterable[tuple[Any, ...]]) -> Iterable[tuple[Any, ...]]:
        """Rows with the entry (last column) parsed; rows checked at open, so a failure here is skipped, not a 500."""
        for *head, entry in rows:
            try:
                yield (*head, _loads(entry))
            except BadRequest:
                log.warning("skipped unreadable history row of prompt %r", storable(head[0]))

    def records(self) -> list[tuple[str, str, float | None, float, dict[str, Any]]]:
        """(prompt_id, status, started, finished, entry) for every entry, oldest first: what /jobs lists."""
        rows = self.db.execute("SELECT prompt_id, status, started, finished, entry FROM history ORDER BY seq")
        return list(self._readable(rows))

    def keys(self) -> list[tuple[int, str, float | None, float]]:
        """(seq, prompt_id, started, finished) of every entry, oldest first, without reading the entries: ``seq``
        names one stored version of an entry (a rewrite gets a new one), so what is derived from it can be kept."""
        rows = self.db.execute("SELECT seq, prompt_id, started, finished FROM history ORDER BY seq")
        return [(int(seq), prompt_id, started, finished) for seq, prompt_id, started, finished in rows]

    def entries(self, seqs: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The entries of the given ``seq`` numbers (those still stored), read at full speed: the strict reader's
        per-value checks cost more than the parse, and every row passed them when the database was opened."""
        wanted = list(seqs)
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(wanted), 500):  # SQLite's bound on parameters is far above this
            chunk = wanted[start:start + 500]
            rows = self.db.execute(f"SELECT seq, entry FROM history WHERE seq IN ({','.join('?' * len(chunk))})",
                                   tuple(chunk))
            for seq, text in rows:
                try:  # rows were checked when the database was opened, and the server writes only strict JSON
                    found[int(seq)] = json.loads(text)
                except (ValueError, RecursionError):
                    found.update((int(s), e) for s, e in self._readable([(seq, text)]))
        return found

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


def _entry_text(entry: dict[str, Any], prompt_text: str | None) -> str:
    """A history entry's JSON, with the queued prompt's own stored text spliced in when there is one."""
    if prompt_text is None:
        return _dumps(entry)
    number, prompt_id, _, extra_data, outputs = entry["prompt"]
    queued = f"[{_dumps(number)},{_dumps(prompt_id)},{prompt_text},{_dumps(extra_data)},{_dumps(outputs)}]"
    rest = _dumps({key: value for key, value in entry.items() if key != "prompt"})
    return f'{{"prompt":{queued},{rest[1:]}' if rest != "{}" else f'{{"prompt":{queued}}}'


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
            item = QueueItem(number, prompt_id, _loads(prompt), _loads(extra_data), _loads(outputs))
            self.history.prompt_texts[prompt_id] = prompt
            if state == "running":
                self._record_crash(item, started)
                continue
            super().put(item.prompt, item.outputs, prompt_id=prompt_id, extra_data=item.extra_data, number=number)
        # Numbers keep rising across restarts, as clients sort by them.
        last = self.db.execute("SELECT entry FROM history ORDER BY seq DESC LIMIT 1")
        if last:
            previous = _loads(last[0][0])["prompt"][0]
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
            front: bool = False, nodes: Mapping[str, Any] | None = None) -> QueueItem:
        if number is None:
            if front:
                number = min(min((i.number for i in self.pending()), default=0), 0) - 1
            else:
                number = next(self._numbers)
        prompt_id = prompt_id or str(uuid.uuid4())
        prompt_text = _dumps_checked(prompt)
        # Stored first, queued second: if the write fails the worker never sees the prompt, so a refused prompt
        # never runs, and a prompt that runs is one a restart finds.
        self.db.execute(
            "INSERT OR REPLACE INTO queue (prompt_id, number, seq, state, prompt, extra_data, outputs, created) "
            "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
            (prompt_id, number, next(self._seq_db), prompt_text, _dumps(dict(extra_data or {})),
             _dumps(list(outputs)), time.time()))
        self.history.prompt_texts[prompt_id] = prompt_text
        return super().put(prompt, outputs, prompt_id=prompt_id, extra_data=extra_data, number=number, front=front,
                           nodes=nodes)

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
        for prompt_id in wanted:
            if prompt_id not in self._running:
                self.history.prompt_texts.pop(prompt_id, None)
        with self.db.lock:
            self.db.conn.executemany("DELETE FROM queue WHERE prompt_id = ? AND state = 'pending'",
                                     [(p,) for p in wanted])
        return removed

    def clear(self) -> int:
        running = {item.prompt_id for item in self.running()}
        removed = super().clear()
        for prompt_id in set(self.history.prompt_texts) - running:
            self.history.prompt_texts.pop(prompt_id, None)
        self.db.execute("DELETE FROM queue WHERE state = 'pending'")
        return removed
