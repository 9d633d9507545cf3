"""Cold-start figures of the `comfy` commands that touch nodes (issue 22 item 4), with and without the node catalogue.

Each figure is the median of ``--runs`` cold process starts (a new process each time; the disk cache stays warm),
printed beside ``python -c "import torch"`` measured in the same run, the cost the catalogue exists to avoid:

* ``comfy nodes --json``: wall time, and its peak RSS (GNU time's ``%M``: see :func:`run_measured`);
* ``comfy run --check WORKFLOW`` (examples/workflows/builtin_demo_api.json by default);
* ``comfy serve``: from the process start to its first ``/object_info`` answer (a fresh data folder each time).

Each in three cache states, all with the same settings (a throwaway cache folder, one small custom-node pack):

* **fresh**: the catalogue was built by an earlier command and nothing it depends on changed;
* **stale**: the custom-node pack is edited before every start, so the catalogue no longer matches: the command
  loads every plugin, as today, and writes a new catalogue (``comfy serve`` writes it after it answers);
* **off**: ``HEARTH_CATALOGUE=off``, never read nor written: what the command cost before the catalogue.

The targets of the issue are checked against the fresh figures; "stale" should be no slower than "off" (PASS
within 10 % or 0.1 s of it, as the two differ only by noise and the catalogue's write).

Every start reads compiled bytecode, as an installed Hearth does: the commands run with ``PYTHONPYCACHEPREFIX`` in
the bench's folder (and without ``PYTHONDONTWRITEBYTECODE``, which some machines set: then every module edited since
its ``.pyc`` was written is compiled again at each start, a fifth of a second for thirty modules), after one
uncounted warm-up start of each command.

The commands run with ``HEARTH_ISOLATION=off`` here as in the tests: the default (``untrusted``) would also start a
pack host for the custom-node pack. Hearth's own source files are part of the key of an editable install: editing
one while this runs makes the "fresh" catalogue stale.

Run: .venv/bin/python bench/startup.py [--runs 5] [--only nodes,check,serve,rss] [--workflow FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "workflows" / "builtin_demo_api.json"
GNU_TIME = Path("/usr/bin/time")
STATES = ("fresh", "stale", "off")
# (figure, unit, target for the fresh cache)
TARGETS = {"nodes": ("comfy nodes --json", "s", 0.5), "check": ("comfy run --check", "s", 0.5),
           "serve": ("comfy serve to /object_info", "s", 0.7), "rss": ("comfy nodes peak RSS", "MB", 80.0)}
PACK = '''"""A one-node pack: the bench edits it to make the catalogue stale."""
EDIT = {edit}


class BenchEcho:
    CATEGORY = "bench"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"text": ("STRING", {{"default": "x"}})}}}}

    def run(self, text):
        return (text,)


NODE_CLASS_MAPPINGS = {{"BenchEcho": BenchEcho}}
'''


def comfy_command() -> list[str]:
    """The ``comfy`` a user runs: the console script beside this Python, else the module."""
    script = Path(sys.executable).with_name("comfy")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hearth.cli.main"]


@dataclass
class Run:
    seconds: float  # wall time
    cpu: float  # the process's own CPU seconds (user + system): what the wall time would be on an idle machine
    rss_mb: float
    code: int
    hit: bool  # the catalogue answered (it was not rebuilt)


def catalogue_files(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (cache / "catalogue").glob("*.json")}


def run_measured(cmd: list[str], env: dict[str, str], cwd: Path) -> Run:
    """One process to its end: wall and CPU time, its own peak RSS in MB, and whether it left the catalogue as it
    found it (a command that rebuilds the catalogue writes it anew).

    The peak RSS is what GNU time (``/usr/bin/time -f %M``) reports, not this process's ``wait4``: Linux keeps the
    memory high-water mark across ``exec``, and a child started by ``vfork`` (as subprocess does) starts with this
    (larger) process's. Without ``/usr/bin/time`` the child's own ``VmHWM`` is polled until it exits, which can miss
    a peak in its last few milliseconds.
    """
    cache = Path(env["HEARTH_CACHE_DIR"])
    before = catalogue_files(cache)
    report = Path(tempfile.mkstemp(prefix="rss-", dir=cwd)[1])
    wrapped = ["/usr/bin/time", "-f", "%M", "-o", str(report), *cmd] if GNU_TIME.exists() else cmd
    start = time.perf_counter()
    proc = subprocess.Popen(wrapped, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    polled_kib = 0
    while not GNU_TIME.exists():
        polled_kib = max(polled_kib, high_water_kib(proc.pid))
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break
        time.sleep(0.002)
    _, status, usage = os.wait4(proc.pid, 0)  # CPU times include the command's, reaped by GNU time
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = report.read_text().strip().splitlines()
    report.unlink()
    kib = int(text[-1]) if GNU_TIME.exists() and text and text[-1].isdigit() else polled_kib
    return Run(elapsed, usage.ru_utime + usage.ru_stime, kib * 1024 / 1e6, proc.returncode,
               bool(before) and catalogue_files(cache) == before)


def high_water_kib(pid: int) -> int:
    """``VmHWM`` of a running process (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_until_answer(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 120.0) -> Run:
    """``comfy serve`` from its start to its first ``/object_info`` answer, then stopped. A hit: its first line
    counted the catalogue's nodes ("... nodes (plugins loading)")."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="serve-", dir=cwd))
    log = data.with_suffix(".log")
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen([*cmd, "--port", str(port), "--data", str(data)], env=env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        with httpx.Client(timeout=timeout) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"comfy serve exited with {proc.returncode} before answering:\n"
                                       f"{log.read_text(errors='replace')}")
                if time.perf_counter() - start > timeout:
                    raise RuntimeError(f"comfy serve did not answer /object_info within {timeout:g} s")
                try:
                    answered = client.get(f"http://127.0.0.1:{port}/object_info").status_code == 200
                except httpx.TransportError:
                    answered = False
                if answered:
                    elapsed = time.perf_counter() - start
                    used = psutil.Process(proc.pid).cpu_times()
                    return Run(elapsed, used.user + used.system, 0.0, 0,
                               "(plugins loading)" in log.read_text(errors="replace"))
                time.sleep(0.005)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)
        log.unlink(missing_ok=True)


class Bench:
    """The throwaway settings every command runs with, and the edits that make their catalogue stale."""

    def __init__(self, work: Path, workflow: Path) -> None:
        self.work = work
        self.workflow = workflow
        self.packs = work / "custom_nodes"
        self.edits = 0
        self.write_pack()
        self.base = {k: v for k, v in os.environ.items()
                     if not k.startswith("HEARTH_") and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
        # Bytecode compiled once into the bench's own folder (see the module's docstring).
        self.base.update(HEARTH_CACHE_DIR=str(work / "cache"), HEARTH_ISOLATION="off",
                         PYTHONPYCACHEPREFIX=str(work / "pycache"))
        (work / "models").mkdir()
        self.common = ["--custom-nodes", str(self.packs)]  # and ./models, the default models folder

    def write_pack(self) -> None:
        pack = self.packs / "bench_pack"
        pack.mkdir(parents=True, exist_ok=True)
        (pack / "__init__.py").write_text(PACK.format(edit=self.edits))
        # Older than the catalogue's two-second "racy" window, as an installed pack is.
        past = time.time() - 600 - self.edits
        os.utime(pack / "__init__.py", (past, past))

    def env(self, state: str) -> dict[str, str]:
        return {**self.base, "HEARTH_CATALOGUE": "off"} if state == "off" else dict(self.base)

    def make_stale(self) -> None:
        """Edit the pack: the catalogue's key no longer matches, so the next start loads every plugin."""
        self.edits += 1
        self.write_pack()

    def prime(self) -> None:
        """Make the catalogue for these settings match (one `comfy nodes` that rebuilds it if need be)."""
        run_measured([*comfy_command(), "nodes", "--json", *self.common], self.base, self.work)

    def commands(self) -> dict[str, Callable[[str], Run]]:
        comfy = comfy_command()
        return {
            "nodes": lambda state: run_measured([*comfy, "nodes", "--json", *self.common], self.env(state), self.work),
            "check": lambda state: run_measured([*comfy, "run", "--check", str(self.workflow), *self.common],
                                                self.env(state), self.work),
            "serve": lambda state: serve_until_answer([*comfy, "serve", *self.common], self.env(state), self.work),
        }


def measure(runs: int, once: Callable[[], Run], before: Callable[[], None]) -> list[Run]:
    found = []
    for _ in range(runs):
        before()
        found.append(once())
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold starts per figure (the median is shown)")
    parser.add_argument("--only", default="nodes,check,serve,rss",
                        help="comma-separated figures: nodes, check, serve, rss")
    parser.add_argument("--states", default=",".join(STATES), help="comma-separated cache states: fresh,stale,off")
    parser.add_argument("--workflow", type=Path, default=DEMO, help="the workflow `comfy run --check` validates")
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    states = [name.strip() for name in args.states.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(TARGETS)) + sorted(set(states) - set(STATES))
    if unknown:
        parser.error(f"unknown figure or state {', '.join(unknown)}; figures: {', '.join(TARGETS)}; "
                     f"states: {', '.join(STATES)}")
    if not args.workflow.is_file():
        parser.error(f"--workflow {args.workflow}: no such file")

    with tempfile.TemporaryDirectory(prefix="hearth-startup-") as folder:
        bench = Bench(Path(folder), args.workflow.resolve())
        import_torch = [sys.executable, "-c", "import torch"]
        run_measured(import_torch, bench.base, bench.work)  # warm-up: torch's bytecode
        torch = measure(args.runs, lambda: run_measured(import_torch, bench.base, bench.work), lambda: None)
        commands = bench.commands()
        for command in commands.values():  # warm-up, not counted: compiles the bytecode every later start reads
            command("off")
        runs: dict[tuple[str, str], list[Run]] = {}
        # `comfy nodes` gives two figures (time and peak RSS) from one set of runs.
        for command in dict.fromkeys("nodes" if figure == "rss" else figure for figure in wanted):
            for state in states:
                # Primed before each fresh start, not once: on a shared editable tree any edit to Hearth's sources
                # makes the catalogue stale, and the window should be one start, not five.
                before = {"fresh": bench.prime, "stale": bench.make_stale}.get(state, lambda: None)
                runs[(command, state)] = measure(args.runs, lambda c=commands[command], s=state: c(s), before)
    print_table(args.runs, wanted, states, runs, torch)
    failed = [f"{TARGETS[c][0]} ({s}) exited with {[r.code for r in found]}"
              for (c, s), found in runs.items() if any(r.code != 0 for r in found)]
    for failure in failed:
        print(f"error: {failure}")
    return 0 if verdicts(wanted, runs)[0] and not failed else 1


def figure_of(figure: str, found: list[Run]) -> tuple[float, float]:
    """(median figure, median CPU seconds) of one set of runs."""
    if figure == "rss":
        value = statistics.median(r.rss_mb for r in found)
        return value, value
    return statistics.median(r.seconds for r in found), statistics.median(r.cpu for r in found)


def verdicts(wanted: list[str], runs: dict[tuple[str, str], list[Run]]) -> tuple[bool, dict[str, tuple[str, str]]]:
    """Whether every checked figure passed, and per figure (target verdict, stale-vs-off verdict)."""
    ok, out = True, {}
    for figure in wanted:
        command = "nodes" if figure == "rss" else figure
        unit, target = TARGETS[figure][1], TARGETS[figure][2]
        target_verdict = stale_verdict = "-"
        if (command, "fresh") in runs:
            value, cpu = figure_of(figure, runs[(command, "fresh")])
            passed = value < target
            ok &= passed
            target_verdict = "PASS" if passed else ("FAIL (CPU PASS)" if cpu < target else "FAIL")
        if (command, "stale") in runs and (command, "off") in runs:
            stale, stale_cpu = figure_of(figure, runs[(command, "stale")])
            off, off_cpu = figure_of(figure, runs[(command, "off")])
            fine = keeps_up(stale, off, unit)
            ok &= fine
            stale_verdict = "PASS" if fine else ("FAIL (CPU PASS)" if keeps_up(stale_cpu, off_cpu, unit) else "FAIL")
        out[figure] = (target_verdict, stale_verdict)
    return ok, out


def keeps_up(stale: float, off: float, unit: str) -> bool:
    """Stale no slower than off, give or take noise: 10 %, or 0.1 s (5 MB)."""
    return stale <= max(off * 1.10, off + (0.1 if unit == "s" else 5.0))


def print_table(count: int, wanted: list[str], states: list[str], runs: dict[tuple[str, str], list[Run]],
                torch: list[Run]) -> None:
    torch_s, torch_cpu = figure_of("torch", torch)
    print(f"Cold starts, median of {count}: wall seconds (the process's own CPU seconds), peak RSS in MB.")
    print(f"python -c 'import torch' in the same run: {torch_s:.2f} s ({torch_cpu:.2f})")
    header = (f"{'figure':30}" + "".join(f"{s:>15}" for s in states)
              + f"{'target':>10}  {'fresh':16}{'stale<=off':16}fresh hits")
    print(header)
    print("-" * len(header))
    _, judged = verdicts(wanted, runs)
    for figure in wanted:
        label, unit, target = TARGETS[figure]
        command = "nodes" if figure == "rss" else figure
        cells = ""
        for state in states:
            found = runs.get((command, state))
            if not found:
                cells += f"{'-':>15}"
                continue
            value, cpu = figure_of(figure, found)
            cells += f"{value:>15.1f}" if figure == "rss" else f"{f'{value:.2f} ({cpu:.2f})':>15}"
        fresh = runs.get((command, "fresh"), [])
        hits = f"{sum(r.hit for r in fresh)}/{len(fresh)}" if fresh else "-"
        target_text = f"< {target:g} {'s' if unit == 's' else 'MB'}"
        print(f"{label:30}{cells}{target_text:>10}  {judged[figure][0]:16}{judged[figure][1]:16}{hits}")
    print("fresh hits: starts the catalogue answered (a miss rebuilt it: a file of its key changed meanwhile, e.g. "
          "an edit to Hearth's own sources in an editable install).")


if __name__ == "__main__":
    sys.exit(main())
