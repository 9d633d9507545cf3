"""``comfy serve`` end to end: 200 queued prompts of builtin nodes, and 50 WebSocket clients receiving progress.

Starts a real server process on a free loopback port with a throwaway data folder, then:

1. queues 200 prompts (the builtin demo workflow, each with its own colour, so every node runs) over HTTP and
   follows them on one WebSocket: submission latency, end-to-end throughput, and event latency (receive time
   minus the server's ``timestamp`` on ``execution_start``/``execution_success``; both clocks are this machine's).
   The baseline is the same 200 prompts through the executor in-process, with no server, queue or database.
2. connects 50 WebSocket clients and queues 20 prompts of a node that reports 50 progress steps, sent to every
   client (no ``client_id``): messages delivered, delivery rate, and ``execution_success`` latency per client.
3. chains of 1,000 and 10,000 trivial nodes through ``/prompt``, with no client and with one WebSocket client
   following the prompt, in ms per node beside the same chain through the executor in-process. The server path
   must stay linear in graph size: every per-event cost independent of the number of nodes (target: within 2x of
   in-process at both sizes).

Wall-clock figures swing with other load on a shared machine; CPU time per prompt (server process versus the
in-process baseline) is the steadier comparison of what the server adds.

Run: .venv/bin/python bench/server.py [--prompts 200] [--clients 50]
Everything stays on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEMO = REPO / "examples" / "workflows" / "builtin_demo_api.json"
LAUNCH = "import sys; from hearth.cli.main import main; sys.exit(main(sys.argv[1:]))"
PROGRESS_PACK = '''
from hearth.core import context


class BenchProgress:
    CATEGORY = "bench"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"label": ("STRING", {"default": ""}), "steps": ("INT", {"default": 50})}}

    def run(self, label, steps):
        for step in range(steps):
            context.progress(step + 1, steps)
        return {"ui": {"text": [label]}}


NODE_CLASS_MAPPINGS = {"BenchProgress": BenchProgress}
'''
CHAIN_PACK = '''
class BenchConst:
    CATEGORY = "bench"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": -(2**62), "max": 2**62})}}

    def run(self, value):
        return (value,)


class BenchAdd:
    CATEGORY = "bench"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT",), "b": ("INT", {"default": 1})}}

    def run(self, a, b):
        return (a + b,)


class BenchSink:
    CATEGORY = "bench"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT",)}}

    def run(self, value):
        return {"ui": {"value": [value]}}


NODE_CLASS_MAPPINGS = {"BenchConst": BenchConst, "BenchAdd": BenchAdd, "BenchSink": BenchSink}
'''
TIMEOUT = 300.0  # seconds any one phase may take before the benchmark gives up


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def demo(index: int) -> dict[str, Any]:
    prompt = json.loads(DEMO.read_text())
    prompt["1"]["inputs"]["color"] = index * 7919 % 0xFFFFFF  # a distinct colour: nothing is served from cache
    return prompt


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(ordered):7.1f}  p95 {p95:7.1f}  max {ordered[-1]:7.1f}"


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    packs = root / "custom_nodes"
    (packs / "bench_progress").mkdir(parents=True)
    (packs / "bench_progress" / "__init__.py").write_text(PROGRESS_PACK)
    (packs / "bench_chain").mkdir()
    (packs / "bench_chain" / "__init__.py").write_text(CHAIN_PACK)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env["PYTHONPATH"] = str(REPO)
    log = open(root / "server.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "serve", "--port", str(port), "--data",
                             str(root / "data"), "--custom-nodes", str(packs), "--isolation", "off"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {(root / 'server.log').read_text()}")
        try:
            if httpx.get(f"{base}/api/features", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start within 60 s")


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def queued_prompts(base: str, count: int, pid: int) -> None:
    client_id = "bench-queue"
    ws_url = base.replace("http", "ws", 1) + f"/ws?clientId={client_id}"
    start_latency: list[float] = []
    success_latency: list[float] = []
    finished: dict[str, float] = {}
    async with connect(ws_url, max_size=None) as ws, httpx.AsyncClient(base_url=base, timeout=60) as http:
        await ws.recv()  # the status greeting

        async def listen() -> None:
            while len(finished) < count:
                message = json.loads(await ws.recv())
                now = time.time() * 1000
                kind, data = message["type"], message["data"]
                if kind == "execution_start":
                    start_latency.append(now - data["timestamp"])
                elif kind == "execution_success":
                    success_latency.append(now - data["timestamp"])
                elif kind == "executing" and data["node"] is None:
                    finished[data["prompt_id"]] = time.perf_counter()

        listener = asyncio.create_task(listen())
        cpu_before = cpu_seconds(pid)
        submit: list[float] = []
        submitted: dict[str, float] = {}
        began = time.perf_counter()
        for index in range(count):
            t0 = time.perf_counter()
            response = await http.post("/prompt", json={"prompt": demo(index), "client_id": client_id})
            response.raise_for_status()
            submit.append((time.perf_counter() - t0) * 1000)
            submitted[response.json()["prompt_id"]] = t0
        queued_at = time.perf_counter()
        await asyncio.wait_for(listener, TIMEOUT)
        elapsed = max(finished.values()) - began
        cpu = cpu_seconds(pid) - cpu_before
        turnaround = [(finished[p] - t) * 1000 for p, t in submitted.items()]
        history = (await http.get("/history", params={"max_items": count})).json()
    ok = sum(1 for entry in history.values() if entry["status"]["status_str"] == "success")
    print(f"  {count} prompts queued in {queued_at - began:.2f} s, all done in {elapsed:.2f} s: "
          f"{count / elapsed:.1f} prompts/s ({ok}/{count} succeeded)")
    print(f"  server CPU time {cpu * 1000 / count:.1f} ms per prompt (all threads: HTTP, worker, events, SQLite)")
    print(f"  POST /prompt latency ms        {percentiles(submit)}")
    print(f"  execution_start event ms       {percentiles(start_latency)}")
    print(f"  execution_success event ms     {percentiles(success_latency)}")
    print(f"  submit -> finished ms          {percentiles(turnaround)}")


def in_process_baseline(count: int, root: Path) -> None:
    from hearth.core.runtime import Runtime

    executor = Runtime.build(environ={}, output=root / "base-out", input=root / "base-in",
                             temp=root / "base-tmp").executor
    executor.run(demo(count + 1))  # imports and first-call costs, as the server's first prompt pays them
    began, cpu_before = time.perf_counter(), time.process_time()
    for index in range(count):
        result = executor.run(demo(index))
        assert result.ok, result.error
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_before
    print(f"  {count / elapsed:.1f} prompts/s ({elapsed:.2f} s); CPU time {cpu * 1000 / count:.1f} ms per prompt")


async def many_clients(base: str, clients: int, prompts: int, steps: int = 50) -> None:
    ws_base = base.replace("http", "ws", 1)
    counts = [0] * clients
    progress = [0] * clients
    latency: list[float] = []
    done = [0] * clients

    async def client(index: int, ready: asyncio.Event, opened: list[int]) -> None:
        async with connect(f"{ws_base}/ws?clientId=bench-{index}", max_size=None) as ws:
            await ws.recv()
            opened.append(index)
            if len(opened) == clients:
                ready.set()
            while done[index] < prompts:
                message = json.loads(await ws.recv())
                counts[index] += 1
                if message["type"] == "progress":
                    progress[index] += 1
                elif message["type"] == "execution_success":
                    latency.append(time.time() * 1000 - message["data"]["timestamp"])
                elif message["type"] == "executing" and message["data"]["node"] is None:
                    done[index] += 1

    ready = asyncio.Event()
    opened: list[int] = []
    tasks = [asyncio.create_task(client(i, ready, opened)) for i in range(clients)]
    await asyncio.wait_for(ready.wait(), 60)
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for index in range(prompts):
            prompt = {"1": {"class_type": "BenchProgress", "inputs": {"label": f"p{index}", "steps": steps}}}
            (await http.post("/prompt", json={"prompt": prompt})).raise_for_status()
    await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    elapsed = time.perf_counter() - began
    total = sum(counts)
    expected = prompts * steps
    print(f"  {clients} clients x {prompts} prompts x {steps} steps: {total} messages in {elapsed:.2f} s "
          f"({total / elapsed:,.0f} messages/s delivered)")
    print(f"  progress events per client: min {min(progress)}, max {max(progress)} (expected {expected})")
    print(f"  execution_success event ms     {percentiles(latency)}")


def chain(n: int, start: int) -> dict[str, Any]:
    """BenchConst -> BenchAdd -> ... -> BenchSink, n nodes; ``start`` makes each run's values new (no cache hits)."""
    prompt: dict[str, Any] = {"0": {"class_type": "BenchConst", "inputs": {"value": start}}}
    for i in range(1, n - 1):
        prompt[str(i)] = {"class_type": "BenchAdd", "inputs": {"a": [str(i - 1), 0], "b": 1}}
    prompt[str(n - 1)] = {"class_type": "BenchSink", "inputs": {"value": [str(n - 2), 0]}}
    return prompt


def chain_in_process(n: int, repeat: int) -> tuple[float, float]:
    """Wall and CPU seconds (each the best of ``repeat``) for one chain through Executor.run: validation and
    execution, no server."""
    from hearth.core.executor import Executor
    from hearth.core.node_registry import NodeRegistry

    scope: dict[str, Any] = {}
    exec(CHAIN_PACK, scope)  # the very classes the server loads  # noqa: S102 - the benchmark's own source
    executor = Executor(NodeRegistry.from_classes(scope["NODE_CLASS_MAPPINGS"]))
    best, best_cpu = float("inf"), float("inf")
    for run in range(repeat):
        prompt = chain(n, start=run * 10**7)
        began, began_cpu = time.perf_counter(), time.process_time()
        result = executor.run(prompt)
        best, best_cpu = min(best, time.perf_counter() - began), min(best_cpu, time.process_time() - began_cpu)
        assert result.ok, result.error
    return best, best_cpu


async def chain_through_server(base: str, n: int, start: int, with_client: bool) -> float:
    """Seconds from POST /prompt to the prompt's end: seen on a WebSocket, or by polling /history without one."""
    prompt = chain(n, start)
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
        if not with_client:
            began = time.perf_counter()
            prompt_id = (await http.post("/prompt", json={"prompt": prompt})).json()["prompt_id"]
            while prompt_id not in (await http.get(f"/history/{prompt_id}")).json():
                await asyncio.sleep(0.005)  # each poll costs the server CPU too
            return time.perf_counter() - began
        sid = f"bench-chain-{start}"
        async with connect(base.replace("http", "ws", 1) + f"/ws?clientId={sid}", max_size=None) as ws:
            await ws.recv()
            began = time.perf_counter()
            prompt_id = (await http.post("/prompt", json={"prompt": prompt, "client_id": sid})).json()["prompt_id"]
            while True:
                message = await asyncio.wait_for(ws.recv(), TIMEOUT)
                if isinstance(message, str):
                    data = json.loads(message)
                    if data["type"] == "execution_success" and data["data"]["prompt_id"] == prompt_id:
                        return time.perf_counter() - began


def chains(base: str, pid: int, repeat: int) -> None:
    """Wall-clock ms per node, and CPU ms per node (the server process's against the in-process run's: the steadier
    figure when other work shares the machine), each the best of ``repeat``."""
    print(f"  {'nodes':>7}{'':>3}{'in-process':>12}{'server, no client':>19}{'server, 1 client':>18}"
          f"{'ratio (no client / client)':>28}")

    def through_server(n: int, start: int, with_client: bool) -> tuple[float, float]:
        began_cpu = cpu_seconds(pid)
        wall = asyncio.run(chain_through_server(base, n, start, with_client))
        return wall, cpu_seconds(pid) - began_cpu

    for n in (1000, 10000):
        local, local_cpu = chain_in_process(n, repeat)
        runs = [through_server(n, 10**8 + r, False) for r in range(repeat)]
        watched_runs = [through_server(n, 2 * 10**8 + r, True) for r in range(repeat)]
        for label, here, alone, watched in (
                ("wall", local, min(w for w, _ in runs), min(w for w, _ in watched_runs)),
                ("cpu", local_cpu, min(c for _, c in runs), min(c for _, c in watched_runs))):
            per = 1000 / n
            print(f"  {n:>7}{label:>5}{here * per:>10.4f}{alone * per:>19.4f}{watched * per:>18.4f}"
                  f"{alone / here:>14.2f}x /{watched / here:>6.2f}x")


def warm_up(base: str) -> None:
    """One prompt first, so imports (torch, PIL) are not billed to the first measured prompt."""
    prompt_id = httpx.post(f"{base}/prompt", json={"prompt": demo(10**6)}, timeout=30).json()["prompt_id"]
    deadline = time.monotonic() + 60
    while prompt_id not in httpx.get(f"{base}/history/{prompt_id}", timeout=10).json():
        if time.monotonic() > deadline:
            raise SystemExit("the warm-up prompt did not finish within 60 s")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--chains-only", action="store_true", help="run only part 3, the node chains")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each chain; the best counts")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    if not args.chains_only:
        print(f"0. baseline: the same {args.prompts} prompts through the executor in-process (no server)")
        in_process_baseline(args.prompts, root)  # first, so the idle server process is not competing for the CPU
    proc, base = start_server(root)
    try:
        warm_up(base)
        print(f"comfy serve at {base} (data in {root})")
        if not args.chains_only:
            print(f"1. {args.prompts} queued prompts of builtin nodes (7 nodes each, one PNG saved)")
            asyncio.run(queued_prompts(base, args.prompts, proc.pid))
            print(f"2. {args.clients} WebSocket clients receiving progress")
            asyncio.run(many_clients(base, args.clients, prompts=20))
        print(f"3. node chains through /prompt, ms per node (best of {args.repeat})")
        chains(base, proc.pid, args.repeat)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
