"""bench/startup.py's measuring and judging, against known processes and hand-made figures: the peak RSS it reports
for a process that holds 120 MiB (through GNU time, and by polling), the wall and CPU time of one that sleeps, and the PASS/FAIL rules of its table
(the issue's targets on the fresh cache; stale no slower than off). The full bench takes minutes: not run here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_startup", ROOT / "bench" / "startup.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def env(tmp_path: Path) -> dict[str, str]:
    return {"HEARTH_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize("how", ["GNU time", "polling VmHWM"])
def test_peak_rss_and_times_are_the_processes_own(tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "polling VmHWM":
        monkeypatch.setattr(bench, "GNU_TIME", tmp_path / "no-time")
    elif not bench.GNU_TIME.exists():
        pytest.skip("/usr/bin/time is not installed")
    held = bench.run_measured([sys.executable, "-c", "b = bytearray(120 * 2**20); b[::4096] = b'x' * len(b[::4096])"],
                              env(tmp_path), tmp_path)
    idle = bench.run_measured([sys.executable, "-c", "import time; time.sleep(0.3)"], env(tmp_path), tmp_path)
    assert held.code == 0 and idle.code == 0
    # The 120 MiB (125.8 MB) it touched, plus an interpreter (well under 60 MB), not this test process's size.
    assert 120 * 1.048 <= held.rss_mb < 120 * 1.048 + 60 and idle.rss_mb < 60
    assert idle.seconds >= 0.3 and idle.cpu < 0.25  # sleeping costs wall time, not CPU
    failed = bench.run_measured([sys.executable, "-c", "raise SystemExit(3)"], env(tmp_path), tmp_path)
    assert failed.code == 3


def run(seconds: float, cpu: float | None = None, rss: float = 30.0) -> object:
    return bench.Run(seconds, seconds if cpu is None else cpu, rss, 0, True)


def test_targets_apply_to_the_fresh_cache_and_stale_must_keep_up_with_off() -> None:
    runs = {("nodes", "fresh"): [run(0.3), run(0.4), run(0.9)], ("nodes", "stale"): [run(2.0)] * 3,
            ("nodes", "off"): [run(1.95)] * 3,
            ("check", "fresh"): [run(0.9, cpu=0.3)] * 3, ("check", "stale"): [run(2.5)] * 3,
            ("check", "off"): [run(2.0)] * 3}
    ok, judged = bench.verdicts(["nodes", "check", "rss"], runs)
    assert judged["nodes"] == ("PASS", "PASS")  # median 0.4 s < 0.5 s; 2.0 s is within 0.1 s of 1.95 s
    assert judged["check"] == ("FAIL (CPU PASS)", "FAIL")  # 0.9 s wall on a loaded machine; 2.5 s > 2.0 s * 1.1
    runs[("check", "stale")] = [run(2.5, cpu=1.0)] * 3
    assert bench.verdicts(["check"], runs)[1]["check"][1] == "FAIL (CPU PASS)"  # 1.0 s CPU against off's 2.0 s
    assert judged["rss"] == ("PASS", "PASS") and not ok
    runs[("nodes", "fresh")] = [run(0.3, rss=95.0)] * 3
    assert bench.verdicts(["rss"], runs)[1]["rss"][0] == "FAIL"


def test_the_table_names_each_figure_with_its_target(capsys: pytest.CaptureFixture[str]) -> None:
    runs = {("serve", "fresh"): [run(0.6, cpu=0.5)], ("serve", "off"): [run(2.0)]}
    bench.print_table(1, ["serve"], ["fresh", "off"], runs, [run(2.2, cpu=1.9)])
    out = capsys.readouterr().out
    assert "python -c 'import torch' in the same run: 2.20 s (1.90)" in out
    [row] = [line for line in out.splitlines() if line.startswith("comfy serve to /object_info")]
    assert "0.60 (0.50)" in row and "2.00 (2.00)" in row and "< 0.7 s" in row and "PASS" in row and "1/1" in row
