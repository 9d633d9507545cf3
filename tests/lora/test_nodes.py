"""LoraLoader and LoraLoaderModelOnly on a tiny SD1 checkpoint; the make-tiny hook and command."""

from __future__ import annotations

import threading

import pytest
import torch
from click.testing import CliRunner
from hearth_lora.loading import clear_cache
from hearth_lora.nodes import LoraLoader, LoraLoaderModelOnly
from hearth_lora.plugin import register_tiny_models
from hearth_lora.tiny import UNMATCHED_MODULE, make_tiny_lora
from hearth_sd import loaders
from hearth_sd.tiny import make_tiny_checkpoint

from hearth.core import context
from hearth.core.context import ExecutionContext, Folders
from hearth.core.nodes import NodeDefinition


@pytest.fixture
def models(tmp_path, make_runtime):
    """A models folder with the tiny SD1 checkpoint and two LoRAs for it (one in a subfolder, with a stray key),
    in a Runtime active for the test."""
    base = make_tiny_checkpoint("sd1", tmp_path / "checkpoints" / "tiny-sd1.safetensors")
    make_tiny_lora(base, tmp_path / "loras" / "tiny.safetensors")
    make_tiny_lora(base, tmp_path / "loras" / "styles" / "stray.safetensors", seed=1, unmatched_key=True)
    clear_cache()
    with make_runtime(models_dir=tmp_path).activate():
        yield base
    clear_cache()


def test_inputs_are_comfyui_s(models):
    spec = LoraLoader.INPUT_TYPES()["required"]
    assert list(spec) == ["model", "clip", "lora_name", "strength_model", "strength_clip"]
    assert spec["lora_name"][0] == ["styles/stray.safetensors", "tiny.safetensors"]
    for name in ("strength_model", "strength_clip"):
        assert {k: spec[name][1][k] for k in ("default", "min", "max", "step")} == {
            "default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}
    assert list(LoraLoaderModelOnly.INPUT_TYPES()["required"]) == ["model", "lora_name", "strength_model"]
    assert NodeDefinition("LoraLoader", LoraLoader).return_types == ("MODEL", "CLIP")
    assert NodeDefinition("LoraLoaderModelOnly", LoraLoaderModelOnly).return_types == ("MODEL",)


def test_lora_loader_changes_the_encoding_and_leaves_its_inputs_alone(models):
    model, clip, _ = loaders.checkpoint(models)
    plain = clip.encode("a cat")[0]
    new_model, new_clip = LoraLoader().load_lora(model, clip, "tiny.safetensors", 1.0, 1.0)
    weak_model, weak_clip = LoraLoader().load_lora(model, clip, "tiny.safetensors", 0.5, 0.5)
    strong, weak = new_clip.encode("a cat")[0], weak_clip.encode("a cat")[0]
    assert not torch.allclose(plain, strong) and not torch.allclose(strong, weak)
    assert torch.equal(clip.encode("a cat")[0], plain)
    assert new_model.patcher.patches and not model.patcher.patches
    assert LoraLoader().load_lora(model, clip, "tiny.safetensors", 0.0, 0.0) == (model, clip)


def test_model_only(models):
    model, _, _ = loaders.checkpoint(models)
    (patched,) = LoraLoaderModelOnly().load_lora_model_only(model, "tiny.safetensors", 0.7)
    assert patched is not model and patched.patcher.patches and not model.patcher.patches
    assert {p.strength for ps in patched.patcher.patches.values() for p in ps} == {0.7}


def test_a_stray_key_is_named_on_the_node(models, caplog):
    model, clip, _ = loaders.checkpoint(models)
    events = []
    ctx = ExecutionContext("p", "12", "12", "LoraLoader", Folders(), lambda e, d: events.append((e, d)),
                           threading.Event())
    token = context.enter(ctx)
    try:
        LoraLoader().load_lora(model, clip, "styles/stray.safetensors", 1.0, 1.0)
    finally:
        context.leave(token)
    (event, data), = events
    assert event == "progress_text" and data["node"] == "12" and UNMATCHED_MODULE in data["text"]
    assert UNMATCHED_MODULE in caplog.text


def test_a_missing_file_names_the_folders(models):
    model, clip, _ = loaders.checkpoint(models)
    with pytest.raises(FileNotFoundError, match="nope.safetensors.*loras"):
        LoraLoader().load_lora(model, clip, "nope.safetensors", 1.0, 1.0)


def test_hook_tiny_loras_fit_the_tiny_checkpoints(tmp_path):
    tiny = register_tiny_models()
    assert {(t.kind, t.filename) for t in tiny.values()} == {("loras", "tiny-lora-sd1.safetensors"),
                                                            ("loras", "tiny-lora-sdxl.safetensors")}
    tiny["lora"].write(tmp_path / "hook.safetensors", 0)
    base = make_tiny_checkpoint("sd1", tmp_path / "tiny-sd1.safetensors")
    direct = make_tiny_lora(base, tmp_path / "direct.safetensors")
    assert (tmp_path / "hook.safetensors").read_bytes() == direct.read_bytes()


def test_make_tiny_lora_command(tmp_path):
    from hearth.cli.main import cli

    base = make_tiny_checkpoint("sdxl", tmp_path / "tiny-sdxl.safetensors")
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "make-tiny", "lora", "--base", str(base), "--out", str(tmp_path / "l.safetensors")])
    assert result.exit_code == 0 and (tmp_path / "l.safetensors").is_file(), result.output
    bad = runner.invoke(cli, ["models", "make-tiny", "lora", "--base", str(tmp_path / "none.safetensors"),
                              "--out", str(tmp_path / "m.safetensors")])
    assert bad.exit_code == 2 and "none.safetensors" in bad.output and "Traceback" not in bad.output


def test_a_file_that_is_no_lora_is_an_error_naming_it(models, tmp_path):
    model, clip, _ = loaders.checkpoint(models)
    (tmp_path / "loras" / "ckpt.safetensors").write_bytes(models.read_bytes())  # a checkpoint in the wrong folder
    with pytest.raises(ValueError, match=r"LoRA ckpt.safetensors: no tensor .* is it a LoRA\?"):
        LoraLoader().load_lora(model, clip, "ckpt.safetensors", 1.0, 1.0)


def test_a_lora_for_another_family_says_so(models, tmp_path):
    make_tiny_lora(make_tiny_checkpoint("sdxl", tmp_path / "xl.safetensors"), tmp_path / "loras" / "xl.safetensors")
    model, clip, _ = loaders.checkpoint(models)
    events = []
    token = context.enter(ExecutionContext("p", "3", "3", "LoraLoader", Folders(),
                                           lambda e, d: events.append(d["text"]), threading.Event()))
    try:
        LoraLoader().load_lora(model, clip, "xl.safetensors", 1.0, 1.0)
    finally:
        context.leave(token)
    assert "is it made for another model family?" in events[0]
