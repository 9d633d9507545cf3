"""LoRAs on a Flux.1 MODEL through LoraLoaderModelOnly: kohya's names patch the fused weights whole, diffusers /
PEFT names patch their rows of them (to_q, to_k, to_v of img_attn.qkv and linear1; proj_mlp of linear1), and a
LoRA on a scaled-fp8 file acts on the dequantized weight."""

from __future__ import annotations

import logging

import pytest
import torch
from hearth_dit import flux_tiny
from hearth_dit.flux_loaders import load_diffusion_model
from hearth_lora.loading import clear_cache
from hearth_lora.nodes import LoraLoaderModelOnly
from safetensors.torch import save_file

RANK, ALPHA, STRENGTH = 4, 2.0, 0.8
SCALE = STRENGTH * ALPHA / RANK
HIDDEN, MLP = 32, 128


@pytest.fixture
def folder(tmp_path, make_runtime):
    for sub in ("diffusion_models", "loras"):
        (tmp_path / sub).mkdir()
    flux_tiny.write_tiny_flux(tmp_path / "diffusion_models" / "tiny-flux.safetensors")
    flux_tiny.write_tiny_flux_scaled_fp8(tmp_path / "diffusion_models" / "tiny-flux-fp8.safetensors")
    clear_cache()
    with make_runtime(models_dir=tmp_path).activate():
        yield tmp_path
    clear_cache()


def flux(folder, name: str = "tiny-flux.safetensors"):
    return load_diffusion_model(folder / "diffusion_models" / name, device="cpu")


def pair(out: int, inner: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(out, RANK, generator=g) * 0.1, torch.randn(RANK, inner, generator=g) * 0.1


def write(folder, name: str, modules: dict[str, tuple[torch.Tensor, torch.Tensor]], peft: bool) -> str:
    tensors = {}
    for module, (up, down) in modules.items():
        if peft:
            tensors |= {f"{module}.lora_B.weight": up, f"{module}.lora_A.weight": down}
        else:
            tensors |= {f"{module}.lora_up.weight": up, f"{module}.lora_down.weight": down}
        tensors[f"{module}.alpha"] = torch.tensor(ALPHA)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "loras" / name))
    return name


def patched_state(model) -> dict[str, torch.Tensor]:
    model._rescale_patches()
    model.patcher.patch_weights()
    try:
        return {k: v.detach().float().clone() for k, v in model.module.state_dict().items()}
    finally:
        model.patcher.unpatch_weights()


def test_kohya_names_patch_the_fused_weights(folder, caplog):
    model = flux(folder)
    original = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
    weights = {"double_blocks.0.img_attn.qkv": pair(3 * HIDDEN, HIDDEN, 1),
               "double_blocks.1.txt_mlp.0": pair(MLP, HIDDEN, 2),
               "single_blocks.1.linear1": pair(3 * HIDDEN + MLP, HIDDEN, 3),
               "single_blocks.0.linear2": pair(HIDDEN, HIDDEN + MLP, 4)}
    modules = {"lora_unet_" + path.replace(".", "_"): factors for path, factors in weights.items()}
    name = write(folder, "kohya.safetensors", modules, peft=False)
    with caplog.at_level(logging.WARNING, logger="hearth.lora"):
        (patched,) = LoraLoaderModelOnly().load_lora_model_only(model, name, STRENGTH)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    got = patched_state(patched)
    keys = {f"{path}.weight" for path in weights}
    for path, (up, down) in weights.items():
        key = f"{path}.weight"
        torch.testing.assert_close(got[key], original[key] + SCALE * (up @ down), rtol=0, atol=1e-6)
    assert all(torch.equal(got[k], v) for k, v in original.items() if k not in keys)


@pytest.mark.parametrize("style", ["peft", "kohya"])
def test_diffusers_names_patch_their_rows_of_the_fused_weights(folder, caplog, style):
    """PEFT's ``transformer.<diffusers path>`` and kohya/ai-toolkit's ``lora_transformer_<path with underscores>``."""
    model = flux(folder)
    original = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
    modules = {"transformer.transformer_blocks.0.attn.to_k": pair(HIDDEN, HIDDEN, 5),
               "transformer.transformer_blocks.1.attn.add_v_proj": pair(HIDDEN, HIDDEN, 6),
               "transformer.transformer_blocks.1.ff.net.0.proj": pair(MLP, HIDDEN, 7),
               "transformer.single_transformer_blocks.0.attn.to_q": pair(HIDDEN, HIDDEN, 8),
               "transformer.single_transformer_blocks.0.proj_mlp": pair(MLP, HIDDEN, 9),
               "transformer.single_transformer_blocks.1.proj_out": pair(HIDDEN, HIDDEN + MLP, 10)}
    if style == "kohya":
        spelled = {"lora_transformer_" + m.removeprefix("transformer.").replace(".", "_"): f for m, f in modules.items()}
    else:
        spelled = modules
    name = write(folder, f"{style}.safetensors", spelled, peft=style == "peft")
    with caplog.at_level(logging.WARNING, logger="hearth.lora"):
        (patched,) = LoraLoaderModelOnly().load_lora_model_only(model, name, STRENGTH)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    got = patched_state(patched)
    expected = {k: v.clone() for k, v in original.items()}

    def add(key: str, rows: slice, module: str) -> None:
        up, down = modules[module]
        expected[key][rows] += SCALE * (up @ down)

    add("double_blocks.0.img_attn.qkv.weight", slice(HIDDEN, 2 * HIDDEN), "transformer.transformer_blocks.0.attn.to_k")
    add("double_blocks.1.txt_attn.qkv.weight", slice(2 * HIDDEN, 3 * HIDDEN),
        "transformer.transformer_blocks.1.attn.add_v_proj")
    add("double_blocks.1.img_mlp.0.weight", slice(None), "transformer.transformer_blocks.1.ff.net.0.proj")
    add("single_blocks.0.linear1.weight", slice(0, HIDDEN), "transformer.single_transformer_blocks.0.attn.to_q")
    add("single_blocks.0.linear1.weight", slice(3 * HIDDEN, 3 * HIDDEN + MLP),
        "transformer.single_transformer_blocks.0.proj_mlp")
    add("single_blocks.1.linear2.weight", slice(None), "transformer.single_transformer_blocks.1.proj_out")
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=1e-6, msg=key)
    assert not torch.equal(got["single_blocks.0.linear1.weight"], original["single_blocks.0.linear1.weight"])


def test_a_lora_on_scaled_fp8_acts_on_the_dequantized_weight(folder):
    model = flux(folder, "tiny-flux-fp8.safetensors")
    key = "double_blocks.0.img_mlp.0.weight"
    layer = model.module.double_blocks[0].img_mlp[0]
    scale = layer.scale_weight.float()
    before = layer.weight.float() * scale
    up, down = pair(MLP, HIDDEN, 11)
    name = write(folder, "kohya-fp8.safetensors", {"lora_unet_double_blocks_0_img_mlp_0": (up, down)}, peft=False)
    (patched,) = LoraLoaderModelOnly().load_lora_model_only(model, name, STRENGTH)
    got = patched_state(patched)[key] * scale  # the stored value, as the layer dequantizes it
    expected = before + SCALE * (up @ down)
    # Stored fp8 again: within fp8's rounding of the patched weight, and far from the unrescaled patch.
    step = expected.abs().max() / 8
    assert (got - expected).abs().max() < step
    change, delta = (got - before).flatten(), (SCALE * (up @ down)).flatten()
    assert torch.nn.functional.cosine_similarity(change, delta, dim=0) > 0.5  # the LoRA's direction survives fp8
    unrescaled = (layer.weight.float() + SCALE * (up @ down)) * scale
    assert (got - expected).abs().max() < (unrescaled - expected).abs().max()
