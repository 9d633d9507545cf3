"""The fuzz suite (issue 24): thousands of seeded hostile requests against a real ``comfy serve``, zero 5xx.

Every route family (prompt, queue, history, jobs, view, upload, userdata, settings, object_info, interrupt, free,
ws) gets the values of tests/harness/hostile.py. Afterwards the server must still work: a normal prompt runs,
history, jobs and settings read back, and it starts again on the same data folder (nothing stored can poison it).

The seed is random per run and printed on failure; ``HEARTH_FUZZ_SEED=N`` replays one run, ``HEARTH_FUZZ_REQUESTS``
changes the count. ``bench/fuzz.py`` is the long version.
"""

from __future__ import annotations

import collections
import os
import random
import re
from pathlib import Path

import pytest
from hearth_server import HearthServer, queue, slow_prompt, wait_history

from tests.harness.hostile import FAMILIES, Generator, seed_files, send

REQUESTS = int(os.environ.get("HEARTH_FUZZ_REQUESTS", "3000"))
MAX_UPLOAD_MB = 2


def _server_errors(log: str, limit: int = 12) -> list[str]:
    """The last line of each traceback in the server's log: the cause of each 5xx, in a word."""
    causes = re.findall(r"\n(\S*(?:Error|Exception|Exit)\S*: .{0,200})", log)
    return list(dict.fromkeys(causes))[:limit]


@pytest.mark.slow
def test_hostile_requests_get_no_5xx_and_the_server_still_works(tmp_path: Path) -> None:
    seed = int(os.environ.get("HEARTH_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    replay = f"HEARTH_FUZZ_SEED={seed} .venv/bin/python -m pytest -q tests/web/test_fuzz.py"
    data = tmp_path / "data"
    seed_files(data)
    server = HearthServer(data, "--max-upload-mb", str(MAX_UPLOAD_MB)).start()
    statuses: dict[str, collections.Counter[int | str]] = collections.defaultdict(collections.Counter)
    failures: list[str] = []
    try:
        with server.http() as client:
            for request in Generator(seed, MAX_UPLOAD_MB * 1024 * 1024).requests(REQUESTS):
                outcome = send(client, server.port, request)
                statuses[request.family][outcome.status or "error"] += 1
                if outcome.status is not None and outcome.status >= 500:
                    failures.append(f"{outcome.status} {request.label()}")
                elif outcome.error is not None and not _dropped_for_size(request, outcome.error):
                    failures.append(f"{outcome.error[:120]} {request.label()}")
                if server.proc is not None and server.proc.poll() is not None:
                    failures.append(f"server exited with {server.proc.returncode} after {request.label()}")
                    break
            assert set(statuses) == set(FAMILIES), f"families never sent: {set(FAMILIES) - set(statuses)}"
            summary = "; ".join(f"{family}: {dict(counts)}" for family, counts in sorted(statuses.items()))
            assert not failures, (f"seed {seed}: {len(failures)} failed of {REQUESTS} (replay: {replay})\n"
                                  + "\n".join(failures[:25]) + "\ncauses in the server log:\n"
                                  + "\n".join(_server_errors(server.output())) + f"\nstatuses: {summary}")
            print(f"fuzz seed {seed}: {summary}")  # shown with -s: what the run covered
            _works(client)
        server.stop()
        server.start()  # nothing the fuzz stored keeps the server from starting again
        with server.http() as client:
            _works(client)
    finally:
        server.kill()


def _dropped_for_size(request: object, error: str) -> bool:
    """A body over the limit may be answered 413 and the connection closed while the client still sends."""
    body = getattr(request, "body", None)
    return body is not None and len(body) > MAX_UPLOAD_MB * 1024 * 1024 and "transport" in error


def _works(client: object) -> None:
    import httpx

    assert isinstance(client, httpx.Client)
    prompt_id = queue(client, slow_prompt("after-fuzz", seconds=0, steps=1))
    entry = wait_history(client, prompt_id, timeout=60)
    assert entry["status"]["status_str"] == "success" and entry["outputs"]["1"]["text"] == ["after-fuzz"]
    for path in ("/history", "/history?max_items=50", "/jobs", "/queue", "/settings", "/object_info/PrimitiveInt",
                 "/userdata?dir=fuzz-dir", f"/history/{prompt_id}"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    assert prompt_id in client.get("/history").json()
