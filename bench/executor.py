"""Executor overhead on large graphs of trivial nodes: a chain and a fan-in tree, at 1,000 and 10,000 nodes.

For each graph: a cold run (validate + execute, empty cache), a re-run with one leaf changed, and a re-run with
nothing changed (all cached). The baseline is the same node functions called directly in dependency order, so
``overhead`` is what the executor adds per node: parsing, validation, signatures, scheduling and caching.

Run: .venv/bin/python bench/executor.py [--repeat N]
Targets: overhead_us_per_node < 50; the 10k figure within 1.5x of the 1k one; re-runs execute only the changed
path; a fully cached 10k run under 0.5 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hearth.core.executor import Executor  # noqa: E402
from hearth.core.node_registry import NodeRegistry  # noqa: E402


class Const:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT", {"default": 0, "min": -(2**62), "max": 2**62})}}

    def run(self, value: int) -> tuple[int]:
        return (value,)


class Add:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"a": ("INT",), "b": ("INT", {"default": 1})}}

    def run(self, a: int, b: int) -> tuple[int]:
        return (a + b,)


class Sink:
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT",)}}

    def run(self, value: int) -> dict[str, Any]:
        return {"ui": {"value": [value]}}


REGISTRY = NodeRegistry.from_classes({"Const": Const, "Add": Add, "Sink": Sink})


def chain(n: int) -> tuple[dict[str, Any], str, int]:
    """Const -> Add -> Add ... -> Sink: n nodes in all. Returns (prompt, leaf id, nodes on the changed path)."""
    prompt: dict[str, Any] = {"0": {"class_type": "Const", "inputs": {"value": 0}}}
    for i in range(1, n - 1):
        prompt[str(i)] = {"class_type": "Add", "inputs": {"a": [str(i - 1), 0], "b": 1}}
    prompt[str(n - 1)] = {"class_type": "Sink", "inputs": {"value": [str(n - 2), 0]}}
    return prompt, "0", n


def fan_in(n: int) -> tuple[dict[str, Any], str, int]:
    """n/2 Const leaves summed pairwise by a tree of Add nodes into one Sink."""
    leaves = n // 2
    prompt: dict[str, Any] = {}
    level = []
    for i in range(leaves):
        prompt[f"c{i}"] = {"class_type": "Const", "inputs": {"value": i}}
        level.append(f"c{i}")
    count = 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            node_id = f"a{count}"
            count += 1
            prompt[node_id] = {"class_type": "Add", "inputs": {"a": [level[j], 0], "b": [level[j + 1], 0]}}
            nxt.append(node_id)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    prompt["sink"] = {"class_type": "Sink", "inputs": {"value": [level[0], 0]}}
    depth, size = 0, leaves
    while size > 1:
        size = (size + 1) // 2
        depth += 1
    return prompt, "c0", depth + 2  # leaf, one Add per level, sink


def baseline(prompt: dict[str, Any]) -> float:
    """Call each node's function directly in dependency order (the work itself, no executor)."""
    classes = {"Const": Const, "Add": Add, "Sink": Sink}
    order, seen = [], set()
    for root in prompt:
        stack = [(root, False)]
        while stack:
            node_id, done = stack.pop()
            if done:
                order.append(node_id)
                continue
            if node_id in seen:
                continue
            seen.add(node_id)
            stack.append((node_id, True))
            stack.extend((v[0], False) for v in prompt[node_id]["inputs"].values() if isinstance(v, list))
    start = time.perf_counter()
    values: dict[str, Any] = {}
    for node_id in order:
        node = prompt[node_id]
        kwargs = {k: values[v[0]][v[1]] if isinstance(v, list) else v for k, v in node["inputs"].items()}
        values[node_id] = classes[node["class_type"]]().run(**kwargs)
    return time.perf_counter() - start


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(name: str, build: Callable[[int], tuple[dict[str, Any], str, int]], n: int, repeat: int) -> dict[str, Any]:
    prompt, leaf, path = build(n)
    base = min(baseline(prompt) for _ in range(repeat))
    cold, result = timed(lambda: Executor(REGISTRY, cache="lru:100000").run(prompt), repeat)
    assert result.ok and len(result.executed) == len(prompt), (result.status, result.error)

    executor = Executor(REGISTRY, cache="lru:100000")
    executor.run(prompt)
    changed = {k: dict(v, inputs=dict(v["inputs"])) for k, v in prompt.items()}
    changed[leaf]["inputs"]["value"] = 10**6
    rerun_t, rerun = timed(lambda: executor.run(changed), 1)
    cached_t, cached = timed(lambda: executor.run(changed), repeat)
    assert cached.ok and not cached.executed
    return {
        "graph": f"{name}-{n}", "nodes": len(prompt), "baseline_s": base, "cold_s": cold,
        "overhead_us_per_node": (cold - base) / len(prompt) * 1e6, "rerun_s": rerun_t,
        "rerun_executed": len(rerun.executed), "changed_path": path, "cached_s": cached_t,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = [measure(name, build, n, args.repeat) for n in (1000, 10000) for name, build in
            (("chain", chain), ("fan-in", fan_in))]
    header = f"{'graph':<14}{'baseline s':>11}{'cold s':>9}{'us/node':>9}{'rerun s':>9}{'rerun ran':>10}" \
             f"{'path':>6}{'cached s':>10}"
    print(header)
    for r in rows:
        print(f"{r['graph']:<14}{r['baseline_s']:>11.4f}{r['cold_s']:>9.4f}{r['overhead_us_per_node']:>9.1f}"
              f"{r['rerun_s']:>9.4f}{r['rerun_executed']:>10}{r['changed_path']:>6}{r['cached_s']:>10.4f}")
    by = {r["graph"]: r for r in rows}
    x = by["chain-1000"]["overhead_us_per_node"]
    y = by["chain-10000"]["overhead_us_per_node"]
    print()
    print(f"overhead_us_per_node={x:.1f}  (target < 50)")
    print(f"overhead_us_per_node_10k={y:.1f}  (ratio {y / x:.2f}, target <= 1.5)")
    print(f"rerun_executed={by['fan-in-1000']['rerun_executed']}  (fan-in-1000 changed path "
          f"{by['fan-in-1000']['changed_path']}; chain-1000 re-ran {by['chain-1000']['rerun_executed']} of 1000)")
    print(f"cached_run_s_10k={max(by['chain-10000']['cached_s'], by['fan-in-10000']['cached_s']):.3f}  (target < 0.5)")
    print("for scale: ComfyUI 0.3.64 on this machine class takes about 46,000 us per node on a 1,000-node chain")


if __name__ == "__main__":
    main()
