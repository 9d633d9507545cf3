"""Prompt validation on large graphs with a dependency cycle, at 1,000, 5,000 and 20,000 nodes.

Three shapes: a ring of Add nodes with one output on it, the same ring with an output on every node (the most
failing nodes times the most blocked outputs), and an acyclic chain of the same size as the baseline. Each figure is
validation plus encoding the /prompt answer as JSON, which is what the server does before it can answer 400.

Run: .venv/bin/python bench/validation.py [--repeat N]
Target: linear, so the 20k figure is within about 20x the 1k one for every shape (issue 24 measured the old walk at
0.6 s for 1,000 nodes and 11.1 s for 5,000 through the server).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from executor import REGISTRY  # noqa: E402  (bench/executor.py: Const, Add, Sink)

from hearth.core.executor.graph import parse_prompt  # noqa: E402
from hearth.core.executor.validation import Validator  # noqa: E402


def ring(n: int, every: bool) -> dict[str, Any]:
    prompt: dict[str, Any] = {str(i): {"class_type": "Add", "inputs": {"a": [str((i - 1) % n), 0], "b": 1}}
                              for i in range(n)}
    for i in range(n if every else 1):
        prompt[f"sink{i}"] = {"class_type": "Sink", "inputs": {"value": [str(i), 0]}}
    return prompt


def chain(n: int) -> dict[str, Any]:
    prompt: dict[str, Any] = {"0": {"class_type": "Const", "inputs": {"value": 0}}}
    for i in range(1, n):
        prompt[str(i)] = {"class_type": "Add", "inputs": {"a": [str(i - 1), 0], "b": 1}}
    prompt["sink"] = {"class_type": "Sink", "inputs": {"value": [str(n - 1), 0]}}
    return prompt


SHAPES = {"ring, one output": lambda n: ring(n, False), "ring, output on every node": lambda n: ring(n, True),
          "chain, no cycle (baseline)": chain}


def measure(prompt: dict[str, Any], repeat: int) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = Validator(REGISTRY).validate(parse_prompt(prompt))
        size = len(json.dumps(result.response()))
        best = min(best, time.perf_counter() - start)
    return best, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'shape':<30}{'nodes':>8}{'seconds':>10}{'us/node':>10}{'answer KB':>11}")
    for name, make in SHAPES.items():
        for n in (1_000, 5_000, 20_000):
            seconds, size = measure(make(n), args.repeat)
            print(f"{name:<30}{n:>8}{seconds:>10.3f}{seconds / n * 1e6:>10.1f}{size / 1024:>11.0f}")


if __name__ == "__main__":
    main()
