"""LoRAs as patches: strength changes and removal restore the exact original bits, the file is read once, LoRAs
chain, and keys that fit nothing are reported by name."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch
from hearth_lora import load_lora, load_lora_for_models
from hearth_lora.apply import warn
from hearth_lora.loading import clear_cache

import hearth.core.models.loading
from hearth.core import context
from hearth.core.context import ExecutionContext, Folders
from hearth.core.models import ModelManager

from .lora_testing import fake_model_and_clip, weights, write_lora

ATTN = "input_blocks.1.1.transformer_blocks.0.attn2.to_v.weight"  # [32, 32] in tiny SD1
NAME = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_v"
Q = "text_model.encoder.layers.0.self_attn.q_proj.weight"


def lora_tensors(seed: int, name: str = NAME) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"{name}.lora_up.weight": torch.randn(32, 4, generator=g).half(),
            f"{name}.lora_down.weight": torch.randn(4, 32, generator=g).half(),
            f"{name}.alpha": torch.tensor(4.0).half(),
            "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.randn(32, 2, generator=g),
            "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.randn(2, 32, generator=g)}


def delta(tensors, name=NAME) -> np.ndarray:
    return tensors[f"{name}.lora_up.weight"].double().numpy() @ tensors[f"{name}.lora_down.weight"].double().numpy()


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def opens(monkeypatch):
    """Counts every file open of a checkpoint reader (the one place hearth.core.models.loading opens files)."""
    count = {"n": 0}
    real = hearth.core.models.loading._open

    def counting(path):
        count["n"] += 1
        return real(path)

    monkeypatch.setattr(hearth.core.models.loading, "_open", counting)
    return count


def test_strength_changes_and_removal_restore_the_original_bits(tmp_path):
    model, clip = fake_model_and_clip("sd1", dtype=torch.float16)
    original = weights(model.patcher)
    original_clip = weights(clip.patchers["l"])
    lora = load_lora(write_lora(tmp_path / "a.safetensors", lora_tensors(1))).parsed
    manager = ModelManager("cpu")
    strong, strong_clip, _ = load_lora_for_models(model, clip, lora, 1.0, 1.0)
    weak, _, _ = load_lora_for_models(model, clip, lora, 0.25, 1.0)
    for patched in (strong, weak, strong, model):
        manager.load(patched.patcher)  # swaps patch sets in place on the shared weights
    assert all(torch.equal(original[k], v) for k, v in weights(model.patcher).items())
    manager.load(weak.patcher)
    assert not torch.equal(weights(model.patcher)[ATTN], original[ATTN])
    weak.patcher.unpatch_weights()
    assert all(torch.equal(original[k], v) for k, v in weights(model.patcher).items())
    strong_clip.patchers["l"].patch_weights()
    strong_clip.patchers["l"].unpatch_weights()
    assert all(torch.equal(original_clip[k], v) for k, v in weights(clip.patchers["l"]).items())


def test_the_original_model_is_untouched_and_nothing_is_copied(tmp_path):
    model, clip = fake_model_and_clip("sd1")
    lora = load_lora(write_lora(tmp_path / "a.safetensors", lora_tensors(2))).parsed
    patched, patched_clip, _ = load_lora_for_models(model, clip, lora, 1.0, 1.0)
    assert patched.patcher.shares_weights(model.patcher) and not model.patcher.patches
    assert patched_clip.patchers["l"].shares_weights(clip.patchers["l"]) and not clip.patchers["l"].patches


def test_a_strength_change_does_not_read_the_file_again(tmp_path, opens):
    path = write_lora(tmp_path / "a.safetensors", lora_tensors(3))
    model, clip = fake_model_and_clip("sd1")
    load_lora_for_models(model, clip, load_lora(path).parsed, 1.0, 1.0)
    reads = opens["n"]
    assert reads > 0
    for strength in (0.5, -0.3, 2.0):
        patched, _, _ = load_lora_for_models(model, clip, load_lora(path).parsed, strength, strength)
        patched.patcher.patch_weights()
    assert opens["n"] == reads


def test_a_file_replaced_on_disk_is_read_again(tmp_path, opens):
    path = write_lora(tmp_path / "a.safetensors", lora_tensors(4))
    first = load_lora(path)
    reads = opens["n"]
    write_lora(path, lora_tensors(5) | {"extra.alpha": torch.tensor(1.0)})
    second = load_lora(path)
    assert second is not first and opens["n"] == 2 * reads and "extra" in second.parsed.problems


def test_two_loras_chain(tmp_path):
    model, clip = fake_model_and_clip("sd1")
    original = weights(model.patcher)[ATTN].double().numpy()
    a, b = lora_tensors(6), lora_tensors(7)
    first = load_lora(write_lora(tmp_path / "a.safetensors", a)).parsed
    second = load_lora(write_lora(tmp_path / "b.safetensors", b)).parsed
    m1, c1, _ = load_lora_for_models(model, clip, first, 0.8, 1.0)
    m2, c2, _ = load_lora_for_models(m1, c1, second, -0.5, 1.0)
    m2.patcher.patch_weights()
    got = weights(m2.patcher)[ATTN].double().numpy()
    expected = original + 0.8 * delta(a) + -0.5 * delta(b)  # alpha 4 / rank 4: scale 1
    assert np.abs(got - expected).max() <= 1e-5
    m1.patcher.patch_weights()  # the first clone still has only the first LoRA
    assert np.abs(weights(m1.patcher)[ATTN].double().numpy() - (original + 0.8 * delta(a))).max() <= 1e-5


def test_unmatched_keys_are_reported_by_name(tmp_path, caplog):
    tensors = lora_tensors(8) | lora_tensors(9, name="lora_unet_no_such_block_to_q")
    tensors["lora_unet_input_blocks_1_1_proj_in.lora_up.weight"] = torch.zeros(64, 2)  # SD1's proj_in is 32 wide
    tensors["lora_unet_input_blocks_1_1_proj_in.lora_down.weight"] = torch.zeros(2, 32)
    tensors["lora_unet_half_written.lora_up.weight"] = torch.zeros(32, 2)
    model, clip = fake_model_and_clip("sd1")
    lora = load_lora(write_lora(tmp_path / "a.safetensors", tensors))
    _, _, report = load_lora_for_models(model, clip, lora.parsed, 1.0, 1.0, lora.name)
    assert report.unmatched == ["lora_unet_no_such_block_to_q"]
    assert list(report.mismatched) == ["lora_unet_input_blocks_1_1_proj_in"]
    assert list(report.problems) == ["lora_unet_half_written"]
    events = []
    ctx = ExecutionContext("p1", "7", "7", "LoraLoader", Folders(), lambda e, d: events.append((e, d)),
                           threading.Event())
    token = context.enter(ctx)
    try:
        with caplog.at_level(logging.WARNING, logger="hearth.lora"):
            warn(report)
    finally:
        context.leave(token)
    text = " ".join(d["text"] for e, d in events if e == "progress_text")
    assert all(d["node"] == "7" for _, d in events)
    for name in ("lora_unet_no_such_block_to_q", "lora_unet_input_blocks_1_1_proj_in", "lora_unet_half_written"):
        assert name in text and name in caplog.text


def test_model_only_skips_text_encoder_keys_quietly(tmp_path):
    model, _ = fake_model_and_clip("sd1")
    lora = load_lora(write_lora(tmp_path / "a.safetensors", lora_tensors(10))).parsed
    patched, clip, report = load_lora_for_models(model, None, lora, 1.0, 0.0)
    assert clip is None and report.applied == {"unet": [ATTN]}
    assert report.skipped == ["lora_te_text_model_encoder_layers_0_self_attn_q_proj"] and not report.warnings()


def test_strength_zero_leaves_that_side_alone(tmp_path):
    model, clip = fake_model_and_clip("sd1")
    lora = load_lora(write_lora(tmp_path / "a.safetensors", lora_tensors(11))).parsed
    same_model, new_clip, report = load_lora_for_models(model, clip, lora, 0.0, 1.0)
    assert same_model is model and not model.patcher.patches
    assert report.applied == {"te": [Q]} and not report.unmatched
    assert new_clip is not clip and new_clip.patchers["l"].patched_keys() == [Q]


def test_two_spellings_of_one_module_apply_once_and_are_reported(tmp_path):
    model, clip = fake_model_and_clip("sd1")
    original = weights(model.patcher)[ATTN].double().numpy()
    tensors = lora_tensors(12)
    dotted = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v"
    tensors |= {f"{dotted}.lora_B.weight": tensors[f"{NAME}.lora_up.weight"].clone(),
                f"{dotted}.lora_A.weight": tensors[f"{NAME}.lora_down.weight"].clone()}
    lora = load_lora(write_lora(tmp_path / "a.safetensors", tensors)).parsed
    patched, _, report = load_lora_for_models(model, clip, lora, 1.0, 1.0)
    patched.patcher.patch_weights()
    assert report.duplicates == {dotted: NAME} and dotted in report.warnings()[0]
    assert np.abs(weights(patched.patcher)[ATTN].double().numpy() - (original + delta(tensors))).max() <= 1e-5
