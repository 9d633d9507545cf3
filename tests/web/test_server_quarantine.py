"""Stored data never stops ``comfy serve``: rows it cannot read are quarantined and reported, and it starts.

Each bad row is written straight into the server's SQLite file, as an older version (or a hand) could have left it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hearth_server import HearthServer, queue, slow_prompt, wait_history

from hearth.core.executor.execution import ExecutionResult
from hearth.core.executor.queue import QueueItem
from hearth.web.store import Database, PersistentHistory, PersistentQueue

GOOD_PROMPT = json.dumps(slow_prompt("resumed", seconds=0, steps=1))


def history_entry(number: str = "5", extra: str = "{}", prompt_id: str = "h") -> str:
    return ('{"prompt": [' + number + ', "' + prompt_id + '", {}, ' + extra + ', []], "outputs": {}, '
            '"status": {"status_str": "success", "completed": true, "messages": []}, "meta": {}}')


# (prompt_id, number, prompt, extra_data): each row a kind the server once could not read back
BAD_QUEUE_ROWS = [
    ("q-number-infinity", math.inf, GOOD_PROMPT, "{}"),
    ("q-bad-json", 1.0, '{"1": {"class_type": ', "{}"),
    ("q-surrogate", 2.0, '{"1": {"class_type": "\\ud800", "inputs": {}}}', "{}"),
    ("q-nan-in-prompt", 3.0, '{"1": {"class_type": "HearthTestSlow", "inputs": {"seconds": NaN}}}', "{}"),
    ("q-extra-not-object", 4.0, GOOD_PROMPT, "[1, 2]"),
    ("q-deep-extra", 5.0, GOOD_PROMPT, '{"d": ' + "[" * 300 + "1" + "]" * 300 + "}"),
]
# (prompt_id, entry)
BAD_HISTORY_ROWS = [
    ("h-number-infinity", history_entry("Infinity")),
    ("h-number-huge", history_entry("1" + "0" * 30)),
    ("h-bad-json", "{not json"),
    ("h-surrogate-client", history_entry(extra='{"client_id": "\\ud800"}')),
    ("h-deep-extra", history_entry(extra='{"d": ' + "[" * 300 + "1" + "]" * 300 + "}")),
    ("h-wrong-shape", '{"prompt": "nope"}'),
    ("h-4400-digits", history_entry(extra='{"n": ' + "9" * 4400 + "}")),
]


def write_bad_rows(database: Path) -> int:
    conn = sqlite3.connect(database)
    with conn:
        for seq, (prompt_id, number, prompt, extra) in enumerate(BAD_QUEUE_ROWS, start=100):
            conn.execute("INSERT INTO queue (prompt_id, number, seq, state, prompt, extra_data, outputs, created) "
                         "VALUES (?, ?, ?, 'pending', ?, ?, '[\"1\"]', ?)", (prompt_id, number, seq, prompt, extra,
                                                                               time.time()))
        # Invalid UTF-8 in a text column: sqlite3 refuses to decode it unless the reader expects it.
        conn.execute("INSERT INTO queue (prompt_id, number, seq, state, prompt, extra_data, outputs, created) "
                     "VALUES (CAST(x'71ff2d6964' AS TEXT), 9, 200, 'pending', ?, '{}', '[]', 0)", (GOOD_PROMPT,))
        for prompt_id, entry in BAD_HISTORY_ROWS:
            conn.execute("INSERT INTO history (prompt_id, status, entry, started, finished) VALUES (?, 'success', "
                         "?, NULL, ?)", (prompt_id, entry, time.time()))
        # A good pending prompt beside them: it must still run after the restart.
        conn.execute("INSERT INTO queue (prompt_id, number, seq, state, prompt, extra_data, outputs, created) "
                     "VALUES ('q-good', 50, 300, 'pending', ?, '{}', '[\"1\"]', ?)", (GOOD_PROMPT, time.time()))
    conn.close()
    return len(BAD_QUEUE_ROWS) + 1 + len(BAD_HISTORY_ROWS)


@pytest.mark.slow
def test_server_starts_over_every_kind_of_unreadable_row(tmp_path: Path) -> None:
    server = HearthServer(tmp_path / "data").start()
    try:
        with server.http() as client:
            kept = queue(client, slow_prompt("before", seconds=0, steps=1))
            wait_history(client, kept)
        server.stop()
        bad = write_bad_rows(tmp_path / "data" / "hearth.sqlite3")
        # Settings an older version wrote: json.dumps escapes a lone surrogate and writes NaN as it stands.
        settings = tmp_path / "data" / "user" / "default" / "comfy.settings.json"
        settings.write_text('{"keep": "\u00e9", "nan": NaN, "\\ud800": 1, "v": "\\udc80", "deep": '
                            + "[" * 300 + "]" * 300 + "}", encoding="utf-8")

        server.start()
        output = server.output()
        assert output.count("warning: quarantined") == bad, output
        for prompt_id, *_ in BAD_QUEUE_ROWS + BAD_HISTORY_ROWS:
            assert f"prompt {prompt_id}" in output
        with server.http() as client:
            history = client.get("/history")
            assert history.status_code == 200 and kept in history.json()
            assert wait_history(client, "q-good")["outputs"]["1"]["text"] == ["resumed"]
            assert client.get("/settings").json() == {"keep": "é"}
            for path in ("/jobs", "/queue", f"/history/{kept}", "/history/h-number-infinity"):
                assert client.get(path).status_code == 200, path
            after = client.post("/prompt", json={"prompt": slow_prompt("after", 0, 1)}).json()
            assert isinstance(after["number"], int)
            wait_history(client, after["prompt_id"])
        server.stop()

        conn = sqlite3.connect(tmp_path / "data" / "hearth.sqlite3")
        rows = conn.execute("SELECT source, prompt_id, reason, row FROM quarantine").fetchall()
        conn.close()
        assert len(rows) == bad
        by_id = {prompt_id: (source, reason, row) for source, prompt_id, reason, row in rows}
        assert by_id["q-number-infinity"][0] == "queue" and "number" in by_id["q-number-infinity"][1]
        assert "Infinity" in by_id["h-number-infinity"][2]  # the row itself is kept for the admin
        assert by_id["h-wrong-shape"][0] == "history"

        server.start()  # quarantined rows are gone from the tables: a second start reports nothing new
        assert server.output().count("warning: quarantined") == bad
    finally:
        server.stop()


def test_a_file_that_is_no_database_is_moved_aside(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hearth.sqlite3").write_bytes(b"this is not an SQLite database, it is a note" * 100)
    server = HearthServer(data).start()
    try:
        assert "warning: quarantined the database" in server.output()
        with server.http() as client:
            assert client.get("/history").json() == {}
        aside = [p for p in data.iterdir() if p.name.startswith("hearth.sqlite3.unreadable-")]
        assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    finally:
        server.stop()


def test_history_stores_only_what_reads_back(tmp_path: Path) -> None:
    """Node outputs may hold NaN, huge integers or lone surrogates: the entry is repaired when written."""
    db = Database(tmp_path / "h.sqlite3")
    history = PersistentHistory(db)
    item = QueueItem(1, "p1", {"1": {"class_type": "X", "inputs": {}}}, {}, ["1"])
    result = ExecutionResult("p1", "success", outputs={"1": {"value": [math.nan, math.inf, 10**30, "a\ud800b",
                                                                       object()]}})
    history.add(item, result)
    entry: dict[str, Any] = history.get("p1")["p1"]
    json.dumps(entry, allow_nan=False).encode("utf-8")  # what a response does; raised before
    assert entry["outputs"]["1"]["value"][:4] == [None, None, str(10**30), "a\ufffdb"]
    db.close()
    assert not Database(tmp_path / "h.sqlite3").quarantined  # and it passes the check at the next open


def test_a_prompt_is_queued_only_once_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(tmp_path / "q.sqlite3")
    prompt_queue = PersistentQueue(db, PersistentHistory(db))

    def broken(sql: str, params: Any = ()) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(db, "execute", broken)
    with pytest.raises(sqlite3.OperationalError):
        prompt_queue.put({"1": {"class_type": "X", "inputs": {}}}, ["1"], prompt_id="never")
    assert prompt_queue.pending() == [] and prompt_queue.get(timeout=0) is None  # the worker never sees it
    db.close()
