"""What the request boundary and the quarantine check cost: strict parse of a large body, and opening a full history.

1. A POST /prompt body the size of a big UI workflow (default 20,000 nodes, about 8 MB): ``json.loads`` alone (what
   the server did before) beside :func:`hearth.web.boundary.parse_json` (strict parse plus the check of every value).
2. A history of ``--history`` entries (default 10,000, the server's default bound) written through
   :class:`PersistentHistory`, then the time to open the database, which reads every row the way the API will and
   quarantines the unreadable ones.

Run: .venv/bin/python bench/boundary.py [--nodes 20000] [--history 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from hearth.core.executor.execution import ExecutionResult
from hearth.core.executor.queue import QueueItem
from hearth.web.boundary import parse_json
from hearth.web.store import Database, PersistentHistory


def workflow_body(nodes: int, rng: random.Random) -> bytes:
    ui = [{"id": i, "type": "KSampler", "pos": [rng.random() * 1000, rng.random() * 1000], "size": [300, 200],
           "widgets_values": [rng.randint(0, 2**63), 20, 7.5, "euler", "normal", 1.0],
           "inputs": [{"name": "model", "link": i}], "properties": {"Node name for S&R": "KSampler"}}
          for i in range(nodes)]
    prompt = {str(i): {"class_type": "KSampler", "inputs": {"seed": i, "cfg": 7.5, "text": "a cat " * 10}}
              for i in range(nodes)}
    return json.dumps({"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": {"nodes": ui}}}}).encode()


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20000)
    parser.add_argument("--history", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(0)

    body = workflow_body(args.nodes, rng)
    plain = best(lambda: json.loads(body), args.repeat)
    strict = best(lambda: parse_json(body), args.repeat)
    print(f"body {len(body) / 1e6:.1f} MB: json.loads {plain:.3f} s, boundary parse_json {strict:.3f} s "
          f"({strict / plain:.2f}x, best of {args.repeat})")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hearth.sqlite3"
        db = Database(path)
        history = PersistentHistory(db, max_items=args.history)
        prompt = {str(i): {"class_type": "KSampler", "inputs": {"seed": rng.randint(0, 2**63), "cfg": 7.5,
                                                                "text": "a cat " * 20, "model": ["1", 0]}}
                  for i in range(15)}
        extra = {"extra_pnginfo": {"workflow": {"nodes": [{"id": i, "pos": [1.5, 2.5], "widgets_values": [1, "x"]}
                                                          for i in range(15)]}}}
        for i in range(args.history):
            outputs = {"9": {"images": [{"filename": f"a{i}.png", "subfolder": "", "type": "output"}]}}
            history.add(QueueItem(i, f"p{i}", prompt, extra, ["9"]), ExecutionResult(f"p{i}", "success", outputs))
        db.close()
        opens = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            Database(path).close()
            opens.append(time.perf_counter() - start)
        print(f"history of {args.history} entries ({path.stat().st_size / 1e6:.1f} MB): open with the quarantine "
              f"check {min(opens):.3f} s (median {statistics.median(opens):.3f} s)")


if __name__ == "__main__":
    main()
