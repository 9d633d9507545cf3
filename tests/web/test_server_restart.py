"""Restarts with every kind of stored row (issue 24): what the server stored reads back, what it cannot read is set
aside, and ``comfy serve`` always starts again on its data folder.

The rows come from a real server (finished, failed, interrupted, with image outputs, at the limits the boundary
accepts, pending and cut short by ``kill -9``) and from rows written straight into SQLite as an older version, a
bug or a hand edit could leave them (``Infinity``, broken JSON, lone surrogates, 300-deep nesting, bytes that are
not UTF-8, wrong shapes).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hearth_server import HearthServer, demo_prompt, queue, slow_prompt, wait_history, wait_running

DEEP = '{"a":' * 300 + "1" + "}" * 300
GOOD_PROMPT = json.dumps(slow_prompt("injected", seconds=0, steps=1))
EXTRA = json.dumps({"client_id": "c"})
# Queue rows: (prompt_id, number, prompt, extra_data, outputs).
BAD_QUEUE = [
    ("bad-q-infinity", float("inf"), GOOD_PROMPT, EXTRA, '["1"]'),  # the poison prompt of the issue
    ("bad-q-huge-number", 1e20, GOOD_PROMPT, EXTRA, '["1"]'),
    ("bad-q-broken-json", 1.0, '{"1": ', EXTRA, '["1"]'),
    ("bad-q-surrogate", 2.0, GOOD_PROMPT, '{"client_id": "\\ud800"}', '["1"]'),
    ("bad-q-deep", 3.0, DEEP, EXTRA, '["1"]'),
    ("bad-q-not-utf8", 4.0, b'{"1": "\xff\xfe"}', EXTRA, '["1"]'),
    ("bad-q-wrong-shape", 5.0, "[1, 2]", EXTRA, "{}"),
]


def _entry(number: Any = 1, outputs: Any = None, extra: Any = None) -> str:
    prompt = json.loads(GOOD_PROMPT)
    return json.dumps({"prompt": [number, "x", prompt, extra if extra is not None else {}, ["1"]],
                       "outputs": outputs if outputs is not None else {},
                       "status": {"status_str": "success", "completed": True, "messages": []}}, allow_nan=True)


# History rows: (prompt_id, entry, finished).
BAD_HISTORY = [
    ("bad-h-nan", "NaN", 1.0),
    ("bad-h-infinity-number", _entry(number=float("inf")), 1.0),
    ("bad-h-surrogate", _entry(outputs={"1": {"text": ["\\udfff"]}}).replace("\\\\udfff", "\\udfff"), 1.0),
    ("bad-h-wrong-shape", "{}", 1.0),
    ("bad-h-deep", _entry(extra={"x": "DEEP"}).replace('"DEEP"', DEEP), 1.0),
    ("bad-h-not-utf8", b'{"prompt": "\xc3\x28"}', 1.0),
    ("bad-h-finished-text", _entry(), "yesterday"),
]


def _inject(database: Path) -> None:
    """Write the bad rows as another program would: straight into the SQLite file while no server runs."""
    conn = sqlite3.connect(database)
    try:
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM queue").fetchone()[0] + 100
        for i, (prompt_id, number, prompt, extra, outputs) in enumerate(BAD_QUEUE):
            conn.execute("INSERT INTO queue (prompt_id, number, seq, state, prompt, extra_data, outputs, created) "
                         "VALUES (?, ?, ?, 'pending', CAST(? AS TEXT), ?, ?, ?)",
                         (prompt_id, number, seq + i, prompt, extra, outputs, time.time()))
        for prompt_id, entry, finished in BAD_HISTORY:  # appended last: the newest rows, which start-up reads
            conn.execute("INSERT INTO history (prompt_id, status, entry, started, finished) "
                         "VALUES (?, 'success', CAST(? AS TEXT), NULL, ?)", (prompt_id, entry, finished))
        conn.commit()
    finally:
        conn.close()


def _reads(client: httpx.Client, ids: list[str]) -> dict[str, Any]:
    """Every read a client makes after a restart, each a 200; returns the history entries of ``ids``."""
    for path in ("/queue", "/history", "/history?max_items=3", "/history?offset=0", "/jobs",
                 "/jobs?status=failed,cancelled,completed&sort_by=execution_duration", "/settings", "/prompt"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
    entries = {}
    for prompt_id in ids:
        entry = client.get(f"/history/{prompt_id}")
        assert entry.status_code == 200 and prompt_id in entry.json(), (prompt_id, entry.text[:300])
        entries[prompt_id] = entry.json()[prompt_id]
        assert client.get(f"/jobs/{prompt_id}").status_code == 200
    return entries


@pytest.mark.slow
def test_every_kind_of_stored_row_survives_restarts(tmp_path: Path) -> None:
    server = HearthServer(tmp_path / "data").start()
    try:
        with server.http() as client:
            done = queue(client, slow_prompt("done", seconds=0, steps=1))
            failed = queue(client, {"1": {"class_type": "HearthTestFail", "inputs": {"message": "boom ☃"}}})
            images = queue(client, demo_prompt(), extra_data={
                "extra_pnginfo": {"workflow": {"id": "wf-1", "nodes": [], "links": []}}})
            # At the edges of what the boundary accepts: the largest exact number, big ints, odd Unicode, depth.
            nested: Any = "leaf"
            for _ in range(40):
                nested = {"n": nested}
            edges = queue(client, {
                "1": {"class_type": "PrimitiveInt", "inputs": {"value": 2**63 - 1}},
                "2": {"class_type": "HearthTestSlow", "inputs": {"label": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u202e ☃ " + "x" * 10_000,
                                                                 "seconds": 0.0, "steps": 1},
                      "_meta": {"title": "édge 💥"}}},
                number=2**53, client_id="client-édge", extra_data={"nested": nested, "big": 2**64 - 1})
            for prompt_id in (done, failed, images, edges):
                wait_history(client, prompt_id)
            interrupted = queue(client, slow_prompt("interrupted", seconds=30, steps=300))
            wait_running(client, interrupted)
            client.post("/interrupt", json={"prompt_id": interrupted})
            wait_history(client, interrupted)
            assert client.post("/settings", json={"Comfy.Good": 1, "Comfy.Text": "ü"}).status_code == 200
            assert client.post("/userdata/workflows%2Fkept.json", content=b'{"nodes": []}').status_code == 200
            cut_short = queue(client, slow_prompt("cut-short", seconds=60, steps=600))
            wait_running(client, cut_short)
            later = queue(client, slow_prompt("pending-later", seconds=0, steps=1))
            first = queue(client, slow_prompt("pending-first", seconds=0, steps=1), front=True)
            finished = [done, failed, images, edges, interrupted]
            before = _reads(client, finished)
        server.kill()
        _inject(server.data / "hearth.sqlite3")
        settings = server.data / "user" / "default" / "comfy.settings.json"
        settings.write_text(settings.read_text()[:-1].rstrip() + ', "Comfy.Bad": NaN}')  # a hand edit

        server.start()  # the poison rows must not stop it
        with server.http() as client:
            for prompt_id in (first, later):
                assert wait_history(client, prompt_id)["status"]["status_str"] == "success"
            crashed = wait_history(client, cut_short)
            assert crashed["status"]["status_str"] == "error"
            after = _reads(client, finished)
            assert after == before  # what was stored reads back unchanged
            statuses = {job["id"]: job["status"] for job in client.get("/jobs").json()["jobs"]}
            assert [statuses[p] for p in finished] == ["completed", "failed", "completed", "completed", "cancelled"]
            assert after[images]["outputs"]["7"]["images"][0]["filename"].endswith(".png")
            for prompt_id, *_ in BAD_QUEUE + BAD_HISTORY:
                assert client.get(f"/history/{prompt_id}").json() == {}
                assert client.get(f"/jobs/{prompt_id}").status_code == 404
            assert client.get("/queue").json() == {"queue_running": [], "queue_pending": []}
            assert client.get("/settings").json()["Comfy.Good"] == 1
            assert client.get("/userdata/workflows%2Fkept.json").content == b'{"nodes": []}'
            newest = queue(client, slow_prompt("after-restart", seconds=0, steps=1))
            assert wait_history(client, newest)["status"]["status_str"] == "success"
        log = server.output()
        for prompt_id, *_ in BAD_QUEUE + BAD_HISTORY:
            assert prompt_id in log, f"{prompt_id} was not reported as quarantined"
        server.stop()

        conn = sqlite3.connect(server.data / "hearth.sqlite3")
        try:  # the unreadable rows are kept for whoever looks, not dropped
            kept = {row[0] for row in conn.execute("SELECT prompt_id FROM quarantine")}
        finally:
            conn.close()
        assert kept >= {prompt_id for prompt_id, *_ in BAD_QUEUE + BAD_HISTORY}

        server.start()  # and again, with nothing left to set aside
        with server.http() as client:
            assert _reads(client, [*finished, first, later, cut_short, newest])[newest]["status"]["completed"]
    finally:
        server.kill()
