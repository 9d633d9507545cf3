"""``comfy serve`` under hostile input, the long version of tests/web/test_fuzz.py: 100,000 seeded requests.

Starts a real server process on a free loopback port with a throwaway data folder (the fuzz's seed files in it),
then runs three phases on one keep-alive connection:

1. baseline: the same count of benign requests (the reads a browser polls, and a small valid prompt now and then);
2. hostile: the generator of tests/harness/hostile.py, every route family (NaN, huge integers, deep nesting, lone
   surrogates, long names, path tricks, wrong types, bodies over the limit, broken multipart, bombs, WebSockets);
3. after: a tenth of the baseline again, to show the server answers as fast as before.

Prints, per phase: requests per second, p50/p99/max latency, status counts (per family for the hostile phase),
every 5xx and dropped connection (first 20, with the causes found in the server's log), and the server's RSS at
each phase boundary (its growth is what hostile traffic leaks, if anything).

Run: .venv/bin/python bench/fuzz.py [--requests 100000] [--baseline N] [--seed S] [--max-minutes 90]
Everything stays on 127.0.0.1; every request has a 30 s timeout and the run stops by itself after --max-minutes.
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "web"))

from hearth_server import HearthServer  # noqa: E402  (the tests' server launcher)

from tests.harness.hostile import Generator, benign, seed_files, send  # noqa: E402

MAX_UPLOAD_MB = 2


def rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1024 / 1024


class Phase:
    """Latencies and statuses of one phase."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.statuses: collections.Counter[Any] = collections.Counter()
        self.by_family: dict[str, collections.Counter[Any]] = collections.defaultdict(collections.Counter)
        self.failures: list[str] = []
        self.seconds = 0.0

    def run(self, server: HearthServer, requests: Any, deadline: float) -> None:
        started = time.perf_counter()
        with server.http() as client:
            for request in requests:
                if time.monotonic() > deadline:
                    self.failures.append("stopped: --max-minutes reached")
                    break
                outcome = send(client, server.port, request)
                self.latencies.append(outcome.seconds)
                key = outcome.status if outcome.status is not None else "dropped"
                self.statuses[key] += 1
                self.by_family[request.family][key] += 1
                too_big = request.body is not None and len(request.body) > MAX_UPLOAD_MB * 1024 * 1024
                if (outcome.status or 0) >= 500 or (outcome.error and not too_big):
                    self.failures.append(f"{outcome.status or outcome.error} {request.label()}")
                if server.proc is not None and server.proc.poll() is not None:
                    self.failures.append(f"server exited with {server.proc.returncode}")
                    break
        self.seconds = time.perf_counter() - started

    def report(self, families: bool) -> None:
        ordered = sorted(self.latencies)
        count = len(ordered)
        if not count:
            print(f"{self.name}: no requests")
            return

        def pct(p: float) -> float:
            return ordered[min(count - 1, int(p * count))] * 1000

        print(f"{self.name}: {count} requests in {self.seconds:.1f} s ({count / self.seconds:.0f}/s); latency ms "
              f"p50 {pct(0.50):.1f}  p99 {pct(0.99):.1f}  max {ordered[-1] * 1000:.1f}  "
              f"mean {statistics.fmean(ordered) * 1000:.1f}")
        print(f"  statuses: {dict(sorted(self.statuses.items(), key=lambda kv: str(kv[0])))}")
        if families:
            for family, counts in sorted(self.by_family.items()):
                print(f"    {family:<12} {dict(sorted(counts.items(), key=lambda kv: str(kv[0])))}")
        server_errors = sum(n for status, n in self.statuses.items() if isinstance(status, int) and status >= 500)
        print(f"  5xx: {server_errors}   dropped connections: {self.statuses.get('dropped', 0)}")
        for failure in self.failures[:20]:
            print(f"    {failure[:200]}")


def causes(log: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"\n(\S*(?:Error|Exception)\S*: .{0,160})", log)))[:20]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="hostile requests (default 100,000)")
    parser.add_argument("--baseline", type=int, default=None, help="benign requests (default: as many)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=90.0, help="stop the run after this long")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    baseline = args.requests if args.baseline is None else args.baseline
    deadline = time.monotonic() + args.max_minutes * 60
    root = Path(tempfile.mkdtemp(prefix="hearth-fuzz-"))
    seed_files(root / "data")
    server = HearthServer(root / "data", "--max-upload-mb", str(MAX_UPLOAD_MB))
    print(f"seed {seed}; {args.requests} hostile and {baseline} benign requests; data in {root}")
    try:
        server.start()
        assert server.proc is not None
        pid = server.proc.pid
        rss = {"start": rss_mb(pid)}
        rng = random.Random(seed)
        phases = [Phase("baseline (benign)"), Phase("hostile"), Phase("after (benign)")]
        phases[0].run(server, (benign(rng) for _ in range(baseline)), deadline)
        rss["after baseline"] = rss_mb(pid)
        phases[1].run(server, Generator(seed, MAX_UPLOAD_MB * 1024 * 1024).requests(args.requests), deadline)
        rss["after hostile"] = rss_mb(pid)
        phases[2].run(server, (benign(rng) for _ in range(max(1, baseline // 10))), deadline)
        rss["end"] = rss_mb(pid)
        print()
        for phase in phases:
            phase.report(families=phase.name == "hostile")
        print("server RSS MB: " + "  ".join(f"{k} {v:.0f}" for k, v in rss.items())
              + f"   growth during hostile: {rss['after hostile'] - rss['after baseline']:+.0f} MB"
              + f"   during baseline: {rss['after baseline'] - rss['start']:+.0f} MB")
        found = causes(server.output())
        if found:
            print("errors in the server log:")
            for line in found:
                print(f"    {line}")
        with server.http() as client:
            alive = client.get("/history?max_items=1").status_code
        print(f"server still answers /history: {alive}")
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
