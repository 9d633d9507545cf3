"""Run the parity workflows on both servers, side by side (interleaved) or one server after the other.

Interleaved (both servers up, each workflow on ComfyUI then at once on Hearth, warm runs alternating) keeps the two
under the same machine load, which matters on a shared machine; sequential keeps only one model in memory (SDXL).
Either way a row is printed as soon as both sides have run a workflow, and a deadline stops starting new
workflows so a long sweep still ends with a table of what ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import report, servers

WARM_SEEDS = (1001, 1002, 1003)


@dataclass
class Side:
    """One project: how to start its server, its prompts by workflow name, where its outputs land."""

    label: str
    start: Callable[[], servers.Server]
    prompts: dict[str, dict[str, Any]]
    warm: Callable[[int], dict[str, Any]]
    outputs: Path
    latents: Path
    server: servers.Server | None = None
    errors: dict[str, str | None] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    warm_runs: list[float] = field(default_factory=list)

    def open(self) -> None:
        self.server = self.start()
        self.figures["ready_s"] = self.server.wait_ready()
        print(f"{self.label}: ready in {self.figures['ready_s']:.1f} s", flush=True)

    def run(self, name: str) -> float:
        result = self.server.run(self.prompts[name])
        self.errors[name] = result.error
        self.figures.setdefault("first_run_s", result.seconds)
        return result.seconds

    def run_warm(self, seed: int) -> None:
        result = self.server.run(self.warm(seed))
        if result.error is None:
            self.warm_runs.append(result.seconds)
            self.figures["warm_run_s"] = min(self.warm_runs)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.figures["peak_rss"] = max(self.figures.get("peak_rss", 0), self.server.peak_rss)
            self.server = None


def _row(name: str, comfy: Side, hearth: Side, seconds: tuple[float, float]) -> report.Row:
    row = report.compare(name, comfy.outputs / "parity" / name, hearth.outputs / "parity" / name,
                         comfy.latents / f"{name}.safetensors", hearth.latents / f"{name}.safetensors",
                         (comfy.errors.get(name), hearth.errors.get(name)))
    values = (f"PNG max {row.max_diff} mean {row.mean_diff:.3f} latent {row.latent_diff}"
              if row.max_diff is not None else "")
    print(f"  {name}: {values} {row.note[:300]} (ComfyUI {seconds[0]:.1f} s, Hearth {seconds[1]:.1f} s)",
          flush=True)
    return row


def interleaved(comfy: Side, hearth: Side, names: list[str], deadline: float) -> list[report.Row]:
    """Both servers up; each workflow on ComfyUI then on Hearth; warm runs alternate."""
    rows = []
    try:
        comfy.open()
        hearth.open()
        for name in names:
            if time.monotonic() > deadline:
                print(f"deadline: {len(names) - len(rows)} workflows not run")
                break
            seconds = (comfy.run(name), hearth.run(name))
            rows.append(_row(name, comfy, hearth, seconds))
        for seed in WARM_SEEDS:
            comfy.run_warm(seed)
            hearth.run_warm(seed)
        print(f"warm runs: ComfyUI {[round(s, 2) for s in comfy.warm_runs]}, "
              f"Hearth {[round(s, 2) for s in hearth.warm_runs]}", flush=True)
    finally:
        comfy.close()
        hearth.close()
    return rows


def sequential(comfy: Side, hearth: Side, names: list[str], deadline: float) -> list[report.Row]:
    """ComfyUI's server runs its share of the time, is stopped, then Hearth's runs the same workflows."""
    ran: list[str] = []
    seconds: dict[str, float] = {}
    half = time.monotonic() + (deadline - time.monotonic()) / 2
    try:
        comfy.open()
        for name in names:
            if time.monotonic() > half:
                print(f"deadline: {len(names) - len(ran)} workflows not run")
                break
            seconds[name] = comfy.run(name)
            ran.append(name)
            print(f"  ComfyUI {name}: {seconds[name]:.1f} s", flush=True)
        for seed in WARM_SEEDS:
            comfy.run_warm(seed)
    finally:
        comfy.close()
    rows = []
    try:
        hearth.open()
        for name in ran:
            rows.append(_row(name, comfy, hearth, (seconds[name], hearth.run(name))))
        for seed in WARM_SEEDS:
            hearth.run_warm(seed)
    finally:
        hearth.close()
    print(f"warm runs: ComfyUI {[round(s, 2) for s in comfy.warm_runs]}, "
          f"Hearth {[round(s, 2) for s in hearth.warm_runs]}", flush=True)
    return rows
