"""bench/quality.py's judging and tables on hand-made figures, and its option errors (the full bench takes minutes;
the figures themselves come from tests/quality's harness and judge, tested there)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "bench" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = load_bench()


@pytest.mark.parametrize(("row", "expected"), [
    ({5: 0.2, 10: 0.95, 20: 0.9, 40: 1.0}, 10),  # at or above 90% from 10 steps on
    ({5: 0.95, 10: 0.85, 20: 0.95, 40: 1.0}, 20),  # a dip at 10 steps: converged only from 20
    ({5: 0.95, 10: 0.95, 20: 0.95, 40: 0.5}, None),  # falls off at 40: never settled
    ({5: 0.1, 10: 0.2}, None),
])
def test_converged_is_where_the_sampler_stays_at_the_bar(row: dict[int, float], expected: int | None) -> None:
    assert bench.converged_at(row) == expected


def test_tables_show_each_figure_and_the_convergence() -> None:
    text = bench.steps_table("karras", 5.0, {"euler": {5: 0.25, 10: 0.9}, "heun": {5: 0.05, 10: 0.5}}, [5, 10])
    lines = text.splitlines()
    assert lines[0].startswith("accuracy by steps (karras, CFG 5")
    assert lines[2].split() == ["euler", "25%", "90%", "10", "steps"]
    assert lines[3].split() == ["heun", "5%", "50%", "no"]
    text = bench.cfg_table("normal", 20, {"euler": {1.0: 0.4, 5.0: 0.95}}, [1.0, 5.0])
    assert text.splitlines()[1].split() == ["sampler", "CFG", "1", "CFG", "5"]
    assert text.splitlines()[2].split() == ["euler", "40%", "95%"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--steps", "0,5"], "at least 1"),
    (["--steps", "five"], "whole numbers"),
    (["--cfgs", "-1"], "at least 0"),
    (["--exact-below", "0.5"], "with --reference exact"),  # the UNet alone has no exact part to cut
    (["--reference", "exact", "--exact-below", "0"], "a sigma above 0"),
])
def test_bad_options_say_what_is_wrong(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_trajectory_table_shows_the_final_the_peak_and_each_step() -> None:
    rows = {"dpmpp_3m_sde": {"final": 0.55, "steps": [(14.61, 0.15), (0.36, 1.0), (0.03, 0.55)]},
            "euler": {"final": 1.0, "steps": [(14.61, 0.15), (0.36, 1.0), (0.03, 1.0)]}}
    lines = bench.trajectory_table("normal", 20, 5.0, rows).splitlines()
    assert lines[0].startswith("denoised estimate by step (normal, 20 steps, CFG 5")
    assert lines[2].split() == ["dpmpp_3m_sde", "55%", "100%", "0.36", "14.61", "15%", "0.36", "100%", "0.03", "55%"]
    assert lines[3].split()[:4] == ["euler", "100%", "100%", "0.36"]  # the first step at the peak
