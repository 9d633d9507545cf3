"""make_tiny_lora: a kohya LoRA whose every key names a real weight of the tiny checkpoint it was made for."""

from __future__ import annotations

import pytest
import torch
from hearth_lora import load_lora, load_lora_for_models
from hearth_lora.tiny import UNMATCHED_MODULE, make_tiny_lora
from hearth_sd import loaders
from hearth_sd.tiny import make_tiny_checkpoint
from safetensors import safe_open

from hearth.core.models import CheckpointError


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return {family: make_tiny_checkpoint(family, folder / f"tiny-{family}.safetensors") for family in ("sd1", "sd2", "sdxl", "sdxl_refiner")}


@pytest.mark.parametrize("family, parts", [("sd1", {"unet", "te"}), ("sd2", {"unet", "te"}),
                                           ("sdxl", {"unet", "te1", "te2"}), ("sdxl_refiner", {"unet", "te"})])
def test_every_key_maps_to_a_real_module_weight(checkpoints, tmp_path, family, parts):
    path = make_tiny_lora(checkpoints[family], tmp_path / "tiny-lora.safetensors")
    model, clip, _ = loaders.checkpoint(checkpoints[family])
    lora = load_lora(path)
    assert not lora.parsed.problems and len(lora.parsed.adapters) >= 20
    new_model, new_clip, report = load_lora_for_models(model, clip, lora.parsed, 1.0, 1.0, lora.name)
    assert not report.unmatched and not report.mismatched and not report.warnings()
    assert set(report.applied) == parts
    # Each module patches its own weight: q, k and v of OpenCLIP land on one fused key, everything else on one each.
    open_clip = "lora_te2_" if family == "sdxl" else "lora_te_" if family in ("sd2", "sdxl_refiner") else None
    fused = sum(1 for name in lora.parsed.adapters if open_clip and name.startswith(open_clip)
                and "_self_attn_" in name and not name.endswith("out_proj"))
    assert report.patched == len(lora.parsed.adapters) - fused + fused // 3
    before = {name: {k: v.clone() for k, v in p.module.state_dict().items()} for name, p in new_clip.patchers.items()}
    cond_before, _ = clip.encode("a photo of a cat")
    cond_after, _ = new_clip.encode("a photo of a cat")
    assert not torch.allclose(cond_before, cond_after)
    for name, p in clip.patchers.items():  # encoding the original again puts the original bits back
        clip.encode("a photo of a cat")
        assert all(torch.equal(before[name][k], v) for k, v in p.module.state_dict().items())


def test_unmatched_key_only_when_asked(checkpoints, tmp_path):
    plain = make_tiny_lora(checkpoints["sd1"], tmp_path / "plain.safetensors")
    flagged = make_tiny_lora(checkpoints["sd1"], tmp_path / "flagged.safetensors", unmatched_key=True)
    with safe_open(plain, "pt") as f:
        assert not any(k.startswith(UNMATCHED_MODULE) for k in f.keys())
    model, clip, _ = loaders.checkpoint(checkpoints["sd1"])
    _, _, report = load_lora_for_models(model, clip, load_lora(flagged).parsed, 1.0, 1.0)
    assert report.unmatched == [UNMATCHED_MODULE]


def test_same_seed_same_bytes_other_seed_other_weights(checkpoints, tmp_path):
    a = make_tiny_lora(checkpoints["sdxl"], tmp_path / "a.safetensors", seed=3).read_bytes()
    b = make_tiny_lora(checkpoints["sdxl"], tmp_path / "b.safetensors", seed=3).read_bytes()
    c = make_tiny_lora(checkpoints["sdxl"], tmp_path / "c.safetensors", seed=4).read_bytes()
    assert a == b and a != c and len(a) < 200_000


def test_a_base_that_is_not_a_checkpoint_is_named(tmp_path):
    bad = tmp_path / "notes.safetensors"
    bad.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="notes.safetensors"):
        make_tiny_lora(bad, tmp_path / "out.safetensors")


def test_comfy_models_make_tiny_lora_for_a_given_checkpoint(tmp_path) -> None:
    from click.testing import CliRunner

    from hearth.cli.main import cli
    from hearth.core.models import read_header

    runner = CliRunner()
    base, lora = tmp_path / "base.safetensors", tmp_path / "lora.safetensors"
    assert runner.invoke(cli, ["models", "make-tiny", "sdxl", "--out", str(base)]).exit_code == 0
    result = runner.invoke(cli, ["models", "make-tiny", "lora", "--base", str(base), "--out", str(lora)])
    assert result.exit_code == 0, result.output
    keys = read_header(lora).shapes
    assert any(k.startswith("lora_unet_") for k in keys)
    assert any(k.startswith("lora_te2_") for k in keys)  # fitted to the SDXL base: both text encoders
    refused = runner.invoke(cli, ["models", "make-tiny", "sdxl", "--base", str(base), "--out", str(lora)])
    assert refused.exit_code == 2 and "not made to fit another file" in refused.output


def test_make_tiny_lora_alone_is_made_for_the_sd_plugins_tiny_checkpoint(tmp_path) -> None:
    from click.testing import CliRunner

    from hearth.cli.main import cli

    # No base given, no Runtime active: the SD plugin's tiny checkpoint is found through the hook and written aside.
    lora = tmp_path / "lora.safetensors"
    result = CliRunner().invoke(cli, ["models", "make-tiny", "lora", "--out", str(lora)])
    assert result.exit_code == 0, result.output
    base = make_tiny_checkpoint("sd1", tmp_path / "tiny-sd1.safetensors")
    assert lora.read_bytes() == make_tiny_lora(base, tmp_path / "want.safetensors").read_bytes()
