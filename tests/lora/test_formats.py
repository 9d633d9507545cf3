"""Each LoRA format patches exactly its formula: expected weights computed independently, in float64 with numpy
(or, for convolutions, by running the adapter's layers as convolutions), must match within 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hearth_lora.apply import load_lora_for_models
from hearth_lora.formats import parse_lora

from .lora_testing import fake_model_and_clip, weights

TOL = 1e-5
ATTN = "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"  # [32, 32] in tiny SD1
CONV = "input_blocks.1.0.in_layers.2.weight"  # [32, 32, 3, 3]
KOHYA_ATTN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
KOHYA_CONV = "lora_unet_down_blocks_0_resnets_0_conv1"


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.3


def apply(tensors, strength=1.0, family="sd1", strength_clip=None):
    model, clip = fake_model_and_clip(family)
    before_unet = weights(model.patcher)
    before_clip = {name: weights(p) for name, p in clip.patchers.items()}
    parsed = parse_lora(tensors)
    model2, clip2, report = load_lora_for_models(model, clip, parsed, strength,
                                                 strength if strength_clip is None else strength_clip, "test")
    model2.patcher.patch_weights()
    for p in clip2.patchers.values():
        p.patch_weights()
    after_unet = weights(model2.patcher)
    after_clip = {name: weights(p) for name, p in clip2.patchers.items()}
    return before_unet, after_unet, before_clip, after_clip, report


def np64(t):
    return t.detach().double().numpy()


def close(actual: torch.Tensor, expected: np.ndarray):
    diff = np.abs(actual.double().numpy() - expected).max()
    assert diff <= TOL, f"max abs difference {diff}"


def test_kohya_linear_with_alpha():
    up, down = rand(32, 4, seed=1), rand(4, 32, seed=2)
    before, after, _, _, report = apply({f"{KOHYA_ATTN}.lora_up.weight": up, f"{KOHYA_ATTN}.lora_down.weight": down,
                                         f"{KOHYA_ATTN}.alpha": torch.tensor(2.0)}, strength=0.7)
    assert report.applied["unet"] == [ATTN]
    close(after[ATTN], np64(before[ATTN]) + 0.7 * (2.0 / 4) * (np64(up) @ np64(down)))


def test_kohya_without_alpha_scales_by_one():
    up, down = rand(32, 8, seed=3), rand(8, 32, seed=4)
    before, after, *_ = apply({f"{KOHYA_ATTN}.lora_up.weight": up, f"{KOHYA_ATTN}.lora_down.weight": down})
    close(after[ATTN], np64(before[ATTN]) + np64(up) @ np64(down))


def test_ldm_spelling_matches_the_same_weight():
    name = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q"
    up, down = rand(32, 2, seed=5), rand(2, 32, seed=6)
    before, after, *_ = apply({f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down})
    close(after[ATTN], np64(before[ATTN]) + np64(up) @ np64(down))


def _conv(x, w, pad):
    return F.conv2d(x.double(), w.double(), padding=pad)


def test_locon_conv_behaves_as_its_two_convolutions():
    down, up = rand(4, 32, 3, 3, seed=7), rand(32, 4, 1, 1, seed=8)
    before, after, *_ = apply({f"{KOHYA_CONV}.lora_down.weight": down, f"{KOHYA_CONV}.lora_up.weight": up,
                               f"{KOHYA_CONV}.alpha": torch.tensor(1.0)}, strength=1.5)
    x = rand(1, 32, 6, 6, seed=9)
    expected = _conv(x, before[CONV], 1) + 1.5 * 0.25 * _conv(_conv(x, down, 1), up, 0)
    close(_conv(x, after[CONV], 1), expected.numpy())


def test_locon_tucker_mid_behaves_as_its_three_convolutions():
    down, mid, up = rand(4, 32, 1, 1, seed=10), rand(4, 4, 3, 3, seed=11), rand(32, 4, 1, 1, seed=12)
    before, after, *_ = apply({f"{KOHYA_CONV}.lora_down.weight": down, f"{KOHYA_CONV}.lora_mid.weight": mid,
                               f"{KOHYA_CONV}.lora_up.weight": up, f"{KOHYA_CONV}.alpha": torch.tensor(4.0)})
    x = rand(2, 32, 5, 7, seed=13)
    expected = _conv(x, before[CONV], 1) + _conv(_conv(_conv(x, down, 0), mid, 1), up, 0)
    close(_conv(x, after[CONV], 1), expected.numpy())


def test_loha_linear():
    t = {f"{KOHYA_ATTN}.hada_w1_a": rand(32, 4, seed=14), f"{KOHYA_ATTN}.hada_w1_b": rand(4, 32, seed=15),
         f"{KOHYA_ATTN}.hada_w2_a": rand(32, 4, seed=16), f"{KOHYA_ATTN}.hada_w2_b": rand(4, 32, seed=17),
         f"{KOHYA_ATTN}.alpha": torch.tensor(2.0)}
    before, after, *_ = apply(t, strength=0.5)
    w1 = np64(t[f"{KOHYA_ATTN}.hada_w1_a"]) @ np64(t[f"{KOHYA_ATTN}.hada_w1_b"])
    w2 = np64(t[f"{KOHYA_ATTN}.hada_w2_a"]) @ np64(t[f"{KOHYA_ATTN}.hada_w2_b"])
    close(after[ATTN], np64(before[ATTN]) + 0.5 * 0.5 * w1 * w2)


def _tucker(core, wa, wb):
    # out[o, i, h, w] = sum_a sum_b core[a, b, h, w] * wa[a, o] * wb[b, i], by explicit loops over the rank
    core, wa, wb = np64(core), np64(wa), np64(wb)
    out = np.zeros((wa.shape[1], wb.shape[1], *core.shape[2:]))
    for a in range(core.shape[0]):
        for b in range(core.shape[1]):
            out += np.multiply.outer(np.outer(wa[a], wb[b]), core[a, b])
    return out


def test_loha_conv_tucker():
    t = {f"{KOHYA_CONV}.hada_w1_a": rand(2, 32, seed=18), f"{KOHYA_CONV}.hada_w1_b": rand(2, 32, seed=19),
         f"{KOHYA_CONV}.hada_t1": rand(2, 2, 3, 3, seed=20), f"{KOHYA_CONV}.hada_w2_a": rand(2, 32, seed=21),
         f"{KOHYA_CONV}.hada_w2_b": rand(2, 32, seed=22), f"{KOHYA_CONV}.hada_t2": rand(2, 2, 3, 3, seed=23)}
    before, after, *_ = apply(t)
    expected = _tucker(t[f"{KOHYA_CONV}.hada_t1"], t[f"{KOHYA_CONV}.hada_w1_a"], t[f"{KOHYA_CONV}.hada_w1_b"]) * \
        _tucker(t[f"{KOHYA_CONV}.hada_t2"], t[f"{KOHYA_CONV}.hada_w2_a"], t[f"{KOHYA_CONV}.hada_w2_b"])
    close(after[CONV], np64(before[CONV]) + expected)


def test_lokr_factored_w2_with_alpha():
    t = {f"{KOHYA_ATTN}.lokr_w1": rand(4, 8, seed=24), f"{KOHYA_ATTN}.lokr_w2_a": rand(8, 2, seed=25),
         f"{KOHYA_ATTN}.lokr_w2_b": rand(2, 4, seed=26), f"{KOHYA_ATTN}.alpha": torch.tensor(1.0)}
    before, after, *_ = apply(t, strength=0.8)
    w2 = np64(t[f"{KOHYA_ATTN}.lokr_w2_a"]) @ np64(t[f"{KOHYA_ATTN}.lokr_w2_b"])
    close(after[ATTN], np64(before[ATTN]) + 0.8 * 0.5 * np.kron(np64(t[f"{KOHYA_ATTN}.lokr_w1"]), w2))


def test_lokr_full_factors_ignore_alpha():
    t = {f"{KOHYA_ATTN}.lokr_w1": rand(2, 4, seed=27), f"{KOHYA_ATTN}.lokr_w2": rand(16, 8, seed=28),
         f"{KOHYA_ATTN}.alpha": torch.tensor(123.0)}
    before, after, *_ = apply(t)
    close(after[ATTN], np64(before[ATTN]) + np.kron(np64(t[f"{KOHYA_ATTN}.lokr_w1"]),
                                                    np64(t[f"{KOHYA_ATTN}.lokr_w2"])))


def test_lokr_conv_kernel_in_w2():
    t = {f"{KOHYA_CONV}.lokr_w1_a": rand(4, 1, seed=29), f"{KOHYA_CONV}.lokr_w1_b": rand(1, 2, seed=30),
         f"{KOHYA_CONV}.lokr_w2": rand(8, 16, 3, 3, seed=31), f"{KOHYA_CONV}.alpha": torch.tensor(0.5)}
    before, after, *_ = apply(t)
    w1 = np64(t[f"{KOHYA_CONV}.lokr_w1_a"]) @ np64(t[f"{KOHYA_CONV}.lokr_w1_b"])
    expected = np.kron(w1[:, :, None, None], np64(t[f"{KOHYA_CONV}.lokr_w2"]))
    close(after[CONV], np64(before[CONV]) + 0.5 * expected)


def test_dora_lycoris_input_axis():
    up, down, m = rand(32, 4, seed=32), rand(4, 32, seed=33), rand(1, 32, seed=34).abs() + 0.5
    before, after, *_ = apply({f"{KOHYA_ATTN}.lora_up.weight": up, f"{KOHYA_ATTN}.lora_down.weight": down,
                               f"{KOHYA_ATTN}.alpha": torch.tensor(4.0), f"{KOHYA_ATTN}.dora_scale": m},
                              strength=0.6)
    w = np64(before[ATTN])
    v = w + np64(up) @ np64(down)
    column_norms = np.sqrt((v ** 2).sum(axis=0, keepdims=True))  # ||V||_c: one norm per input column
    dora = np64(m) * v / column_norms
    close(after[ATTN], w + 0.6 * (dora - w))


def test_dora_peft_magnitude_vector_output_axis():
    prefix = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    a, b, m = rand(2, 32, seed=35), rand(32, 2, seed=36), rand(32, seed=37).abs() + 0.5
    before, after, *_ = apply({f"{prefix}.lora_A.weight": a, f"{prefix}.lora_B.weight": b,
                               f"{prefix}.lora_magnitude_vector": m})
    v = np64(before[ATTN]) + np64(b) @ np64(a)
    row_norms = np.sqrt((v ** 2).sum(axis=1, keepdims=True))
    close(after[ATTN], np64(m)[:, None] * v / row_norms)


@pytest.mark.parametrize("spelling", [
    ("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", ".lora_A.weight", ".lora_B.weight"),
    ("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", ".lora.down.weight", ".lora.up.weight"),
    ("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k", "_lora.down.weight",
     "_lora.up.weight"),
    ("base_model.model.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", ".lora_A.weight",
     ".lora_B.weight"),
])
def test_diffusers_and_peft_spellings(spelling):
    name, down_suffix, up_suffix = spelling
    key = "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"  # [32, 32]: SD1's tiny context is 32 wide
    a, b = rand(3, 32, seed=38), rand(32, 3, seed=39)
    before, after, _, _, report = apply({name + down_suffix: a, name + up_suffix: b})
    assert report.applied["unet"] == [key] and not report.unmatched
    close(after[key], np64(before[key]) + np64(b) @ np64(a))


def test_diffusers_to_out_of_old_attention_processors():
    name = "unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora"
    a, b = rand(2, 64, seed=40), rand(64, 2, seed=41)
    before, after, _, _, report = apply({f"{name}.down.weight": a, f"{name}.up.weight": b})
    key = "middle_block.1.transformer_blocks.0.attn1.to_out.0.weight"
    assert report.applied["unet"] == [key]
    close(after[key], np64(before[key]) + np64(b) @ np64(a))


def test_text_encoder_kohya_and_peft_sd1():
    q = "text_model.encoder.layers.1.self_attn.q_proj.weight"
    fc1 = "text_model.encoder.layers.0.mlp.fc1.weight"  # [128, 32]
    kohya, peft = "lora_te_text_model_encoder_layers_1_self_attn_q_proj", "text_encoder.text_model.encoder.layers.0.mlp.fc1"
    up, down, b, a = rand(32, 2, seed=42), rand(2, 32, seed=43), rand(128, 2, seed=44), rand(2, 32, seed=45)
    t = {f"{kohya}.lora_up.weight": up, f"{kohya}.lora_down.weight": down,
         f"{peft}.lora_B.weight": b, f"{peft}.lora_A.weight": a}
    _, _, before, after, report = apply(t, strength=1.0, strength_clip=0.3)
    assert sorted(report.applied["te"]) == sorted([q, fc1]) and not report.unmatched
    close(after["l"][q], np64(before["l"][q]) + 0.3 * np64(up) @ np64(down))
    close(after["l"][fc1], np64(before["l"][fc1]) + 0.3 * np64(b) @ np64(a))


def test_sdxl_open_clip_q_k_v_are_thirds_of_the_fused_projection():
    fused = "transformer.resblocks.1.attn.in_proj_weight"  # [96, 32]
    t, expected_delta = {}, np.zeros((96, 32))
    for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):
        name = f"lora_te2_text_model_encoder_layers_1_self_attn_{proj}"
        up, down = rand(32, 2, seed=50 + i), rand(2, 32, seed=60 + i)
        t |= {f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down}
        expected_delta[32 * i:32 * (i + 1)] = np64(up) @ np64(down)
    fc2 = "text_encoder_2.text_model.encoder.layers.0.mlp.fc2"  # OpenCLIP mlp.c_proj [32, 128]
    t |= {f"{fc2}.lora_A.weight": rand(2, 128, seed=70), f"{fc2}.lora_B.weight": rand(32, 2, seed=71)}
    _, _, before, after, report = apply(t, family="sdxl", strength_clip=0.5)
    assert sorted(report.applied["te2"]) == sorted([fused, "transformer.resblocks.0.mlp.c_proj.weight"])
    assert not report.unmatched and "te1" not in report.applied
    close(after["g"][fused], np64(before["g"][fused]) + 0.5 * expected_delta)
    c_proj = "transformer.resblocks.0.mlp.c_proj.weight"
    close(after["g"][c_proj], np64(before["g"][c_proj]) + 0.5 * np64(t[f"{fc2}.lora_B.weight"]) @ np64(
        t[f"{fc2}.lora_A.weight"]))
    assert torch.equal(after["l"]["text_model.encoder.layers.1.self_attn.q_proj.weight"],
                       before["l"]["text_model.encoder.layers.1.self_attn.q_proj.weight"])


def test_open_clip_text_projection_is_transposed():
    up, down = rand(32, 2, seed=80), rand(2, 32, seed=81)
    _, _, before, after, report = apply({"lora_te2_text_projection.lora_up.weight": up,
                                         "lora_te2_text_projection.lora_down.weight": down}, family="sdxl")
    assert report.applied["te2"] == ["text_projection"]
    close(after["g"]["text_projection"], np64(before["g"]["text_projection"]) + (np64(up) @ np64(down)).T)


def test_linear_lora_patches_a_1x1_conv_weight():
    proj_in = "input_blocks.1.1.proj_in.weight"  # SD1 keeps proj_in as a 1x1 conv [32, 32, 1, 1]
    up, down = rand(32, 2, seed=82), rand(2, 32, seed=83)
    before, after, *_ = apply({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": up,
                               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": down})
    close(after[proj_in], np64(before[proj_in]) + (np64(up) @ np64(down))[:, :, None, None])


def test_dora_on_one_third_of_a_fused_projection():
    name = "text_encoder_2.text_model.encoder.layers.0.self_attn.v_proj"
    a, b, m = rand(2, 32, seed=90), rand(32, 2, seed=91), rand(32, seed=92).abs() + 0.5
    _, _, before, after, _ = apply({f"{name}.lora_A.weight": a, f"{name}.lora_B.weight": b,
                                    f"{name}.lora_magnitude_vector": m}, family="sdxl")
    fused = "transformer.resblocks.0.attn.in_proj_weight"
    w = np64(before["g"][fused])
    v = w[64:] + np64(b) @ np64(a)
    expected = w.copy()
    expected[64:] = np64(m)[:, None] * v / np.sqrt((v ** 2).sum(axis=1, keepdims=True))
    close(after["g"][fused], expected)
