"""The dtype policy: on a CPU a float16 checkpoint's weights are held in float32 when the budget has room for them,
kept float16 and cast per call when it has not, and LoRA-patched weights stay in the compute dtype; text encoders
follow ComfyUI's float16 storage, patched weights included."""

from __future__ import annotations

import logging

import psutil
import pytest
import torch
from hearth_sd.checkpoint import load_checkpoint
from hearth_sd.tiny import tiny_state_dict
from torch import nn

from hearth.core.models import dtype_policy, write_safetensors
from hearth.core.models.loading import load_into, load_state_dict
from hearth.core.models.manager import ModelManager
from hearth.core.models.patches import PatchedModel

MB = 1024 * 1024
ATTN = "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny SD1 checkpoint as float16 (as tiny files are written) and the same values stored as float32."""
    folder = tmp_path_factory.mktemp("dtype")
    tensors, metadata = tiny_state_dict("sd1")
    half = write_safetensors(tensors, folder / "half.safetensors", metadata)
    full = write_safetensors({k: v.float() for k, v in tensors.items()}, folder / "full.safetensors", metadata)
    return half, full


def unet_of(path) -> PatchedModel:
    unet = load_checkpoint(path, load_device="cpu").model.unet
    return PatchedModel(unet, name="unet", load_device="cpu")


def dtypes(model: PatchedModel) -> set[torch.dtype]:
    return {t.dtype for t in model.module.state_dict().values()}


def forward(model: PatchedModel, batch: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x, context = torch.randn(batch, 4, 8, 8, generator=gen), torch.randn(batch, 77, 32, generator=gen)
    with torch.no_grad():
        return model.module(x, torch.tensor([500.0, 20.0])[:batch], context)


def test_fp16_unet_is_held_fp32_when_the_budget_allows(files, caplog):
    half, full = files
    model = unet_of(half)
    stored = model.nbytes
    manager = ModelManager("cpu")  # the automatic budget: the machine's free RAM
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hearth.models"):
        manager.load(model, memory_required=0)
    assert dtypes(model) == {torch.float32}
    # Accounting counts what is held: every tensor of a float16 file widened, twice the bytes.
    assert model.nbytes == 2 * stored and manager.loaded_models()[0].nbytes == 2 * stored
    assert manager.used_bytes("cpu") == 2 * stored
    assert [r.getMessage() for r in caplog.records] == [f"unet: fp16 file -> held fp32 (cast at load, "
                                                        f"{2 * stored / 1e6:.1f} MB)"]
    (entry,) = manager.dtype_policy()
    assert entry["model"] == "unet" and entry["stored_dtype"] == "fp16" and entry["held_dtype"] == "fp32"
    assert entry["cast"] == "at load" and entry["held_bytes"] == 2 * stored and entry["stored_bytes"] == stored
    assert manager.status()["models"][0]["dtype"] == entry
    # The held model computes exactly what a model whose file was float32 computes.
    reference = unet_of(full)
    ModelManager("cpu").load(reference, memory_required=0)
    assert torch.equal(forward(model), forward(reference))


def test_weights_a_cpu_computes_from_are_aligned_so_a_file_gives_what_memory_gives(tmp_path):
    # An fp32 UNet packed after other tensors, as a saved merge is: safetensors leaves its tensors off 64-byte
    # boundaries, where CPU kernels round differently (1e-6) from the same weights in fresh memory.
    tensors, metadata = tiny_state_dict("sd1")
    tensors = {k: v if k.startswith("first_stage_model.") else v.float() for k, v in tensors.items()}
    model = unet_of(write_safetensors(tensors, tmp_path / "merged.safetensors", metadata))
    assert any(p.data_ptr() % 64 for p in model.module.parameters())
    ModelManager("cpu").load(model, memory_required=0)
    assert not any(p.data_ptr() % 64 for p in model.module.parameters())
    got = forward(model, batch=1)
    for p in model.module.parameters():
        p.data = p.data.clone()  # fresh allocations, as ComfyUI's load_state_dict copies into
    assert torch.equal(got, forward(model, batch=1))


def test_a_small_budget_keeps_fp16_and_casts_per_call(files, caplog):
    half, _ = files
    held = unet_of(half)
    ModelManager("cpu").load(held, memory_required=0)
    model = unet_of(half)
    stored = model.nbytes
    manager = ModelManager("cpu", budgets={"cpu": stored * 3 // 2})  # room for float16, not for float32
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hearth.models"):
        manager.load(model, memory_required=0)
    assert dtypes(model) == {torch.float16}
    assert manager.used_bytes("cpu") == stored and not manager.loaded_models()[0].partial
    assert [r.getMessage() for r in caplog.records] == [
        f"unet: fp16 file -> held fp16, cast to fp32 per call (budget {stored * 1.5 / 1e6:.1f} MB < "
        f"{2 * stored / 1e6:.1f} MB)"]
    (entry,) = manager.dtype_policy()
    assert entry["held_dtype"] == "fp16" and entry["cast"] == "per call" and entry["held_bytes"] == stored
    torch.testing.assert_close(forward(model), forward(held), rtol=1e-6, atol=1e-6)


def test_working_memory_counts_against_the_widened_copy(files):
    half, _ = files
    model = unet_of(half)
    stored = model.nbytes
    manager = ModelManager("cpu", budgets={"cpu": 3 * stored})  # float32 fits alone, not beside the activations
    manager.load(model, memory_required=2 * stored)
    assert dtypes(model) == {torch.float16}
    manager.free()
    manager.load(model, memory_required=stored // 2)
    assert dtypes(model) == {torch.float32}


@pytest.mark.parametrize("budget", [None, 3], ids=["held fp32", "cast per call"])
def test_a_lora_patched_weight_stays_in_the_compute_dtype(files, budget):
    half, _ = files
    model = unet_of(half)
    budgets = {"cpu": model.nbytes * budget // 2} if budget else None
    original = model.module.state_dict()[ATTN].float()
    delta = torch.randn(original.shape, generator=torch.Generator().manual_seed(1)) * 1e-3
    lora = model.clone()
    lora.add_patches({ATTN: delta}, 0.7)
    ModelManager("cpu", budgets=budgets).load(lora, memory_required=0)
    patched = lora.module.state_dict()[ATTN]
    # float32 arithmetic on the float16 weight, not rounded back to float16 (which moves the latent by 0.2).
    assert patched.dtype == torch.float32
    torch.testing.assert_close(patched, original + 0.7 * delta, rtol=1e-6, atol=1e-8)


def test_unloading_gives_the_stored_weights_and_bytes_back(files):
    half, _ = files
    model = unet_of(half)
    pristine = {k: v.clone() for k, v in model.module.state_dict().items()}
    stored = model.nbytes
    lora = model.clone()
    lora.add_patches({ATTN: torch.ones(pristine[ATTN].shape)}, 0.5)
    manager = ModelManager("cpu", budgets={"cpu": 4 * stored})
    manager.load(lora, memory_required=0)
    assert manager.used_bytes("cpu") == 2 * stored
    assert manager.free()["unloaded"] == ["unet"]
    assert manager.used_bytes("cpu") == 0 and model.nbytes == stored and manager.dtype_policy() == []
    after = model.module.state_dict()
    assert all(after[k].dtype == torch.float16 and torch.equal(after[k], v) for k, v in pristine.items())


def test_devices_with_fast_half_precision_change_nothing(files, monkeypatch, caplog):
    half, _ = files
    monkeypatch.setattr(dtype_policy, "supports_dtype", lambda device, dtype: True)  # a GPU's answer
    model = unet_of(half)
    lora = model.clone()
    lora.add_patches({ATTN: torch.ones(model.module.state_dict()[ATTN].shape)}, 0.5)
    manager = ModelManager("cpu")
    with caplog.at_level(logging.INFO, logger="hearth.models"):
        manager.load(lora, memory_required=0)
    assert dtypes(model) == {torch.float16} and manager.dtype_policy() == [] and not caplog.records


def test_only_half_precision_weights_of_declared_modules_are_widened():
    plain = nn.Linear(4, 4).half()  # declares no compute dtype: its layers would not cast an input
    assert dtype_policy.widening(plain, torch.device("cpu")) is None
    fp8 = nn.Linear(4, 4).to(torch.float8_e4m3fn)  # fp8 is a user's choice to save memory
    fp8.compute_dtype = torch.float32
    assert dtype_policy.widening(fp8, torch.device("cpu")) is None
    half = nn.Linear(4, 4).half()
    half.compute_dtype = torch.float32
    assert dtype_policy.widening(half, torch.device("cpu")) == (torch.float16, torch.float32)
    assert dtype_policy.held_bytes(half, torch.float32) == 2 * (16 + 4) * 2


def rss() -> int:
    return psutil.Process().memory_info().rss


def test_holding_a_mapped_checkpoint_costs_the_widened_copy_only_and_does_not_grow(tmp_path):
    source = {f"{i}.weight": torch.full((1024, 1024), 0.25, dtype=torch.float16) for i in range(50)}  # 100 MiB
    source["vae.weight"] = torch.ones(8, dtype=torch.float16)
    path = write_safetensors(source, tmp_path / "half.safetensors")
    del source
    with torch.device("meta"):
        module = nn.Sequential(*[nn.Linear(1024, 1024, bias=False) for _ in range(50)])
    state = load_state_dict(path)
    vae = state.pop("vae.weight")  # another model of the file, still using it: the mapping stays
    load_into(module, state, source=path)
    del state
    module.compute_dtype = torch.float32
    model = PatchedModel(module, name="big", load_device="cpu")
    manager = ModelManager("cpu", budgets={"cpu": 4 * model.nbytes})
    before = rss()
    manager.load(model, memory_required=0)
    held = rss() - before
    # The float32 copy (200 MiB); the float16 file pages it was read from went back as each tensor was cast.
    assert 190 * MB < held < 240 * MB, f"holding cost {held / MB:.0f} MiB"
    assert manager.free()["unloaded"] == ["big"]
    after = []
    for _ in range(3):
        manager.load(model, memory_required=0)
        assert {p.dtype for p in module.parameters()} == {torch.float32}
        manager.free()
        after.append(rss())
    assert after[-1] - after[0] < 20 * MB, "memory grows run after run"
    assert after[0] - before < 120 * MB, "unloading keeps the stored float16 bytes (100 MiB), nothing more"
    assert torch.equal(vae, torch.ones(8, dtype=torch.float16))


TEXT_Q = "text_model.encoder.layers.0.self_attn.q_proj.weight"


def text_encoder_of(path) -> PatchedModel:
    return PatchedModel(load_checkpoint(path, load_device="cpu").clip.encoders["l"], name="clip", load_device="cpu")


def test_text_encoders_are_stored_float16_as_comfyui_stores_them(files):
    half, full = files
    from_full, from_half = text_encoder_of(full), text_encoder_of(half)
    # A float32 file's text encoder holds float16 values (ComfyUI's text_encoder_dtype), so both files give the
    # same conditioning; the UNet of the float32 file keeps its float32 values.
    assert dtypes(from_full) == {torch.float16}
    full_sd = load_state_dict(full)
    key = next(k for k in full_sd if k.endswith("layers.0.self_attn.q_proj.weight"))
    assert torch.equal(from_full.module.state_dict()[TEXT_Q], full_sd[key].half())
    assert all(torch.equal(v, from_half.module.state_dict()[k]) for k, v in from_full.module.state_dict().items())
    assert dtypes(unet_of(full)) == {torch.float32}


@pytest.mark.parametrize("budget", [None, 3], ids=["held fp32", "cast per call"])
def test_a_lora_patched_text_encoder_weight_is_rounded_to_float16(files, budget):
    half, _ = files
    model = text_encoder_of(half)
    budgets = {"cpu": model.nbytes * budget // 2} if budget else None
    original = model.module.state_dict()[TEXT_Q].float()
    delta = torch.randn(original.shape, generator=torch.Generator().manual_seed(1)) * 1e-3
    lora = model.clone()
    lora.add_patches({TEXT_Q: delta}, 0.7)
    ModelManager("cpu", budgets=budgets).load(lora, memory_required=0)
    patched = lora.module.state_dict()[TEXT_Q]
    # ComfyUI computes the patch in float32 and stores it back in the text encoder's float16: the same values here,
    # held in float32 on a CPU; unrounded, the conditioning differs by 1e-3.
    exact = original + 0.7 * delta
    assert patched.dtype == torch.float32
    assert torch.equal(patched, exact.half().float()) and not torch.equal(patched, exact)
