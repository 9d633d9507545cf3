"""bench/dit_forward.py and bench/dit_load.py run at tiny sizes: the two transformers of each family get the same
weights (their outputs agree), and the load bench's files load both ways with the manager's load partial."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("diffusers")


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_forward_bench_compares_transformers_with_the_same_weights(capsys: pytest.CaptureFixture) -> None:
    threads = torch.get_num_threads()
    try:
        results = load("dit_forward").main(["--width", "256", "--depth", "1", "--size", "8", "--text", "8",
                                            "--repeats", "1", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert set(results) == {"flux", "zimage"}
    for family, found in results.items():
        assert found["max_abs_difference"] <= 1e-4, family  # a wrong conversion would differ by ~0.1
        assert found["ratio"] == pytest.approx(found["hearth"] / found["diffusers"])
    printed = capsys.readouterr().out
    assert "Flux.1 dev layout at hidden 256" in printed and "Z-Image Turbo layout at dim 256" in printed


@pytest.mark.parametrize("family", ["flux", "zimage"])
def test_load_bench_file_loads_raw_and_through_the_manager_partially(family: str, tmp_path: Path) -> None:
    bench = load("dit_load")
    if family == "flux":
        from hearth_dit.flux_model import CONFIG_METADATA_KEY
        from hearth_dit.flux_tiny import TINY_FLUX as config

        layout = bench.flux_layout(1.0, config)
        metadata = {CONFIG_METADATA_KEY: json.dumps({"axes_dim": list(config.axes_dim)})}
        assert layout["scaled_fp8"] == ((0,), "F8_E4M3")
        assert layout["double_blocks.0.img_attn.qkv.weight"][1] == "F8_E4M3"
        assert layout["double_blocks.0.img_attn.qkv.scale_weight"] == ((), "F32")
    else:
        from hearth_dit.zimage_model import CONFIG_METADATA_KEY
        from hearth_dit.zimage_tiny import TINY_DIT as config

        layout = bench.zimage_layout(1.0, config)
        metadata = {CONFIG_METADATA_KEY: json.dumps({"axes_dims": list(config.axes_dims)})}
        assert {dtype for _, dtype in layout.values()} == {"BF16"}
    path = tmp_path / f"{family}.safetensors"
    written = bench.write_file(path, layout, metadata=metadata)
    from hearth.core.models import read_header

    assert set(read_header(path).shapes) == set(layout) and path.stat().st_size > written
    threads = torch.get_num_threads()
    try:  # in this process: the bench runs each in a fresh one only so that ru_maxrss is that load's
        raw = bench.worker("safetensors", family, str(path), 0)
        ours = bench.worker("hearth", family, str(path), 0)
    finally:
        torch.set_num_threads(threads)
    assert raw["weights"] == written and ours["placement"]["partial"], json.dumps(ours)
    assert ours["placement"]["resident_bytes"] < ours["placement"]["bytes"]
