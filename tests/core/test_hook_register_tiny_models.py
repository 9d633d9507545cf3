"""register_tiny_models: plugins add tiny models that `comfy models make-tiny` writes, alone or all at once."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from hearth.cli.main import cli
from hearth.core.hookspecs import hookimpl
from hearth.core.model_folders import TinyModel, write_tiny_models


def write_text(path: Path, seed: int) -> None:
    path.write_text(f"tiny toy model, seed {seed}")


class ToyModels:
    @hookimpl
    def register_tiny_models(self):
        return {"toy": TinyModel("upscale_models", "tiny-toy.pth", write_text, "a toy upscaler")}


def test_hook_register_tiny_models(hearth_plugins, register_plugin, tmp_path):
    register_plugin(ToyModels(), "toy-models")
    models = hearth_plugins.resolve_named("register_tiny_models", "tiny model")
    assert models["toy"].kind == "upscale_models"
    written = dict(write_tiny_models(tmp_path, {"toy": models["toy"]}, seed=7))
    assert written["toy"] == tmp_path / "upscale_models" / "tiny-toy.pth"
    assert written["toy"].read_text() == "tiny toy model, seed 7"


def test_make_tiny_lists_writes_one_and_checks_its_arguments(tmp_path):
    runner = CliRunner()
    listing = runner.invoke(cli, ["models", "make-tiny", "--json"])
    assert listing.exit_code == 0, listing.output
    assert json.loads(listing.stdout)["sd1"] == {"kind": "checkpoints", "filename": "tiny-sd1.safetensors",
                                                 "description": "SD1.x checkpoint (CLIP-L, eps)"}
    table = runner.invoke(cli, ["models", "make-tiny"])
    assert table.exit_code == 0 and "tiny-sdxl-refiner.safetensors" in table.output
    out = tmp_path / "one.safetensors"
    result = runner.invoke(cli, ["models", "make-tiny", "sd1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1e6 and f"wrote {out}" in result.output
    bad = runner.invoke(cli, ["models", "make-tiny", "sd9", "--out", str(out)])
    assert bad.exit_code == 2 and "no tiny model 'sd9'" in bad.output and "sdxl" in bad.output
    both = runner.invoke(cli, ["models", "make-tiny", "sd1", "--out", str(out), "--models-dir", str(tmp_path)])
    assert both.exit_code == 2 and "exactly one of --out" in both.output
    suffix = runner.invoke(cli, ["models", "make-tiny", "sd1", "--out", str(tmp_path / "x.ckpt")])
    assert suffix.exit_code == 2 and ".safetensors" in suffix.output
