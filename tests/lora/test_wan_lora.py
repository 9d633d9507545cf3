"""LoRAs on a Wan 2.1 MODEL through LoraLoaderModelOnly: ComfyUI, bare, diffusers, kohya/musubi and VideoX-Fun
spellings patch the same weights by the same amount, full ``.diff`` / ``.diff_b`` updates land on norms and biases,
and a LoRA for another family is reported, not applied."""

from __future__ import annotations

import logging

import pytest
import torch
from hearth_lora.loading import clear_cache
from hearth_lora.nodes import LoraLoader, LoraLoaderModelOnly
from hearth_video import wan_loaders
from hearth_video.wan_tiny import TINY_DIT, write_tiny_wan_diffusion_model
from safetensors.torch import save_file

RANK, ALPHA = 4, 2.0  # scale alpha / rank = 0.5
# Wan's own module path -> (its diffusers name, the shape of its weight [out, in]).
TARGETS = {
    "blocks.0.self_attn.q": ("blocks.0.attn1.to_q", (32, 32)),
    "blocks.0.cross_attn.o": ("blocks.0.attn2.to_out.0", (32, 32)),
    "blocks.1.ffn.0": ("blocks.1.ffn.net.0.proj", (64, 32)),
    "head.head": ("proj_out", (64, 32)),
}


def factors(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Own module path -> (B ``[out, rank]``, A ``[rank, in]``)."""
    g = torch.Generator().manual_seed(seed)
    return {path: (torch.randn(shape[0], RANK, generator=g) * 0.1, torch.randn(RANK, shape[1], generator=g) * 0.1)
            for path, (_, shape) in TARGETS.items()}


def lora_file(style: str, seed: int = 0) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for path, (b, a) in factors(seed).items():
        diffusers = TARGETS[path][0]
        if style in ("kohya", "fun"):
            name = {"kohya": "lora_unet_", "fun": "lora_unet__"}[style] + path.replace(".", "_")
            tensors |= {f"{name}.lora_up.weight": b, f"{name}.lora_down.weight": a}
        else:
            name = {"comfy": f"diffusion_model.{path}", "bare": path, "diffusers": f"transformer.{diffusers}"}[style]
            tensors |= {f"{name}.lora_B.weight": b, f"{name}.lora_A.weight": a}
        tensors[f"{name}.alpha"] = torch.tensor(ALPHA)
    return tensors


STYLES = ("comfy", "bare", "diffusers", "kohya", "fun")


@pytest.fixture
def folder(tmp_path, make_runtime):
    for sub in ("diffusion_models", "loras"):
        (tmp_path / sub).mkdir()
    write_tiny_wan_diffusion_model(tmp_path / "diffusion_models" / "tiny-wan.safetensors")
    clear_cache()
    with make_runtime(models_dir=tmp_path).activate():
        yield tmp_path
    clear_cache()


@pytest.fixture
def wan(folder):
    return wan_loaders.load_diffusion_model(folder / "diffusion_models" / "tiny-wan.safetensors", device="cpu")


def write(folder, name: str, tensors: dict[str, torch.Tensor]) -> str:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "loras" / name))
    return name


def patched_state(model) -> dict[str, torch.Tensor]:
    """The weights ``model``'s patches give, then the shared weights restored."""
    model.patcher.patch_weights()
    try:
        return {k: v.detach().clone() for k, v in model.module.state_dict().items()}
    finally:
        model.patcher.unpatch_weights()


def denoise(model) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 16, 1, 4, 4, generator=g)
    cond = torch.randn(1, 3, TINY_DIT.text_dim, generator=g)
    out = model.denoise(x, torch.tensor([0.7]), cond)
    model.patcher.unpatch_weights()
    return out


@pytest.mark.parametrize("style", STYLES)
def test_each_naming_style_patches_exactly_w_plus_scaled_b_a(folder, wan, style, caplog):
    name = write(folder, f"{style}.safetensors", lora_file(style))
    original = {k: v.detach().clone() for k, v in wan.module.state_dict().items()}
    with caplog.at_level(logging.WARNING, logger="hearth.lora"):
        (patched,) = LoraLoaderModelOnly().load_lora_model_only(wan, name, 0.8)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert sorted(patched.patcher.patched_keys()) == sorted(f"{p}.weight" for p in TARGETS)
    got = patched_state(patched)
    for path, (b, a) in factors().items():
        key = f"{path}.weight"
        expected = original[key] + 0.8 * (ALPHA / RANK) * (b @ a)
        torch.testing.assert_close(got[key], expected, rtol=0, atol=1e-6)
    untouched = [k for k in original if k not in {f"{p}.weight" for p in TARGETS}]
    assert all(torch.equal(got[k], original[k]) for k in untouched)
    assert not wan.patcher.patches  # the input MODEL is left alone
    assert all(torch.equal(v, original[k]) for k, v in wan.module.state_dict().items())


def test_the_styles_give_identical_weights_and_change_the_output(folder, wan):
    results = {}
    for style in STYLES:
        (patched,) = LoraLoaderModelOnly().load_lora_model_only(wan, write(folder, f"{style}.safetensors",
                                                                           lora_file(style)), 1.0)
        results[style] = patched_state(patched)
    for style in STYLES[1:]:
        assert all(torch.equal(results["comfy"][k], v) for k, v in results[style].items()), style
    (patched,) = LoraLoaderModelOnly().load_lora_model_only(wan, "comfy.safetensors", 1.0)
    before, after = denoise(wan), denoise(patched)
    assert (after - before).abs().max() > 1e-3
    assert torch.equal(denoise(wan), before)  # and the base model's output comes back


def test_strength_zero_is_a_no_op(folder, wan):
    name = write(folder, "comfy.safetensors", lora_file("comfy"))
    (same,) = LoraLoaderModelOnly().load_lora_model_only(wan, name, 0.0)
    assert same is wan and not wan.patcher.patches
    model, clip = LoraLoader().load_lora(wan, None, name, 0.0, 0.0)
    assert model is wan and clip is None


def test_full_differences_patch_norms_and_biases(folder, wan):
    g = torch.Generator().manual_seed(3)
    norm_q, bias_q, norm3 = (torch.randn(32, generator=g) for _ in range(3))
    modulation, head_modulation = torch.randn(1, 6, 32, generator=g), torch.randn(1, 2, 32, generator=g)
    patch_b, patch_a = torch.randn(32, 2, 1, 1, 1, generator=g), torch.randn(2, 16, 1, 2, 2, generator=g)
    name = write(folder, "diffs.safetensors", {
        "diffusion_model.blocks.0.self_attn.norm_q.diff": norm_q,
        "diffusion_model.blocks.0.self_attn.q.diff_b": bias_q,
        "transformer.blocks.1.norm2.diff": norm3,  # diffusers' norm2 is Wan's norm3
        "diffusion_model.blocks.1.modulation.diff": modulation,
        "transformer.scale_shift_table.diff": head_modulation,  # diffusers' name of the head's modulation
        "lora_unet_patch_embedding.lora_up.weight": patch_b,  # a Conv3d
        "lora_unet_patch_embedding.lora_down.weight": patch_a,
        **{k: v for k, v in lora_file("comfy").items() if ".self_attn.q." in k},
    })
    original = {k: v.detach().clone() for k, v in wan.module.state_dict().items()}
    (patched,) = LoraLoaderModelOnly().load_lora_model_only(wan, name, 0.5)
    assert len(patched.patcher.patched_keys()) == 7
    got = patched_state(patched)
    b, a = factors()["blocks.0.self_attn.q"]
    torch.testing.assert_close(got["blocks.0.self_attn.norm_q.weight"],
                               original["blocks.0.self_attn.norm_q.weight"] + 0.5 * norm_q, rtol=0, atol=1e-6)
    torch.testing.assert_close(got["blocks.0.self_attn.q.bias"], original["blocks.0.self_attn.q.bias"] + 0.5 * bias_q,
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(got["blocks.1.norm3.weight"], original["blocks.1.norm3.weight"] + 0.5 * norm3,
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(got["blocks.1.modulation"], original["blocks.1.modulation"] + 0.5 * modulation,
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(got["head.modulation"], original["head.modulation"] + 0.5 * head_modulation,
                               rtol=0, atol=1e-6)
    conv = (patch_b.flatten(1) @ patch_a.flatten(1)).reshape(32, 16, 1, 2, 2)
    torch.testing.assert_close(got["patch_embedding.weight"], original["patch_embedding.weight"] + 0.5 * conv,
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(got["blocks.0.self_attn.q.weight"],
                               original["blocks.0.self_attn.q.weight"] + 0.5 * (ALPHA / RANK) * (b @ a),
                               rtol=0, atol=1e-6)


def test_an_sd_lora_on_wan_is_reported_not_applied(folder, wan, caplog):
    g = torch.Generator().manual_seed(4)
    unet = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_v"
    text = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    name = write(folder, "sd.safetensors", {
        f"{unet}.lora_up.weight": torch.randn(32, 2, generator=g), f"{unet}.lora_down.weight": torch.randn(2, 32),
        f"{text}.lora_up.weight": torch.randn(32, 2, generator=g), f"{text}.lora_down.weight": torch.randn(2, 32)})
    with caplog.at_level(logging.WARNING, logger="hearth.lora"):
        (patched,) = LoraLoaderModelOnly().load_lora_model_only(wan, name, 1.0)
    assert not patched.patcher.patches
    messages = [r.getMessage() for r in caplog.records]
    assert any("only 0 of its 1 modules fit this model" in m for m in messages), messages
    assert any("match no weight of this model" in m and unet in m for m in messages), messages


def test_a_wrong_shape_is_reported_as_mismatched(folder, wan, caplog):
    name = write(folder, "wide.safetensors", {
        "diffusion_model.blocks.0.self_attn.q.lora_B.weight": torch.zeros(48, 2),
        "diffusion_model.blocks.0.self_attn.q.lora_A.weight": torch.zeros(2, 48)})
    with caplog.at_level(logging.WARNING, logger="hearth.lora"):
        (patched,) = LoraLoaderModelOnly().load_lora_model_only(wan, name, 1.0)
    assert not patched.patcher.patches
    assert any("have shapes this model's weights do not" in r.getMessage() and "blocks.0.self_attn.q.weight"
               in r.getMessage() for r in caplog.records)


def test_make_tiny_lora_wan_fits_every_block_matrix_of_the_tiny_wan(folder, wan, caplog):
    from click.testing import CliRunner

    from hearth.cli.main import cli

    out = folder / "loras" / "tiny-lora-wan.safetensors"
    result = CliRunner().invoke(cli, ["models", "make-tiny", "lora-wan", "--out", str(out)])
    assert result.exit_code == 0 and out.is_file(), result.output
    with caplog.at_level(logging.WARNING, logger="hearth.lora"):
        (patched,) = LoraLoaderModelOnly().load_lora_model_only(wan, out.name, 1.0)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    matrices = {k for k, v in wan.module.state_dict().items()
                if k.startswith("blocks.") and k.endswith(".weight") and v.ndim == 2}
    assert len(matrices) == TINY_DIT.num_layers * 10 and set(patched.patcher.patched_keys()) == matrices


def test_lora_loader_with_a_wan_clip_patches_the_model_and_names_the_text_keys_it_cannot_map(folder, wan, caplog):
    from hearth_video.wan_tiny import write_tiny_umt5

    write_tiny_umt5(folder / "umt5.safetensors")
    clip = wan_loaders.load_text_encoder(folder / "umt5.safetensors", device="cpu")
    text = "lora_te_encoder_block_0_layer_0_SelfAttention_q"  # UMT5 LoRAs are not mapped (yet)
    name = write(folder, "with-text.safetensors", lora_file("comfy") | {
        f"{text}.lora_up.weight": torch.zeros(32, 2), f"{text}.lora_down.weight": torch.zeros(2, 32)})
    with caplog.at_level(logging.WARNING, logger="hearth.lora"):
        model, new_clip = LoraLoader().load_lora(wan, clip, name, 1.0, 1.0)
    assert sorted(model.patcher.patched_keys()) == sorted(f"{p}.weight" for p in TARGETS)
    assert not new_clip.patcher.patches and not clip.patcher.patches
    assert any("match no weight of this model" in r.getMessage() and text in r.getMessage() for r in caplog.records)


def test_full_difference_tensors_are_parsed_as_their_own_algorithm():
    from hearth_lora.formats import Full, parse_lora

    parsed = parse_lora({"a.diff": torch.ones(4), "b.diff_b": torch.ones(4), "c.lora_up.weight": torch.ones(4, 1),
                         "c.lora_down.weight": torch.ones(1, 4), "c.diff_b": torch.ones(4),
                         "d.diff_b": torch.ones(4), "d.alpha": torch.tensor(1.0)})
    assert parsed.algorithms == {"a": "diff", "c": "lora"}
    assert isinstance(parsed.adapters["a"], Full) and set(parsed.biases) == {"b", "c", "d"}
    assert parsed.problems == {"d": "incomplete: has only alpha"}
