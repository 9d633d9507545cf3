"""ControlNet and T2I-Adapter parity with diffusers on tiny random configs (fp32, same weights loaded both ways):
the networks' residuals, the three ControlNet file layouts, and where the UNet adds the residuals."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hearth_sd.controlnet_layouts import convert_diffusers_controlnet, to_ldm
from hearth_sd.controlnet_model import ControlNetConfig, ControlNetModel, controlnet_config
from hearth_sd.families import FAMILIES
from hearth_sd.sdxl_conditioning import sdxl_adm
from hearth_sd.t2i_adapter import build_adapter, convert_diffusers_adapter
from hearth_sd.unet import UNetConfig, UNetModel

from .ldm_to_diffusers import convert_unet
from .sd_testing import randomize_
from .test_architecture_parity import _diffusers_unet

diffusers = pytest.importorskip("diffusers", reason="diffusers is a test dependency (requirements/dev.txt)")

TOL = 1e-4
HINT_WIDTHS = (8, 16, 16, 32)


def _diffusers_controlnet(c: UNetConfig):
    heads = tuple(c.heads_for(c.model_channels * m)[0] for m in c.channel_mult)
    kwargs = {}
    if c.adm_in_channels:
        kwargs = dict(addition_embed_type="text_time", addition_time_embed_dim=256,
                      projection_class_embeddings_input_dim=c.adm_in_channels)
    return diffusers.ControlNetModel(
        in_channels=c.in_channels,
        down_block_types=tuple("CrossAttnDownBlock2D" if d else "DownBlock2D" for d in c.transformer_depth),
        block_out_channels=tuple(c.model_channels * m for m in c.channel_mult),
        layers_per_block=c.num_res_blocks,
        transformer_layers_per_block=tuple(d or c.transformer_depth_middle for d in c.transformer_depth),
        cross_attention_dim=c.context_dim,
        attention_head_dim=heads,
        use_linear_projection=c.use_linear_in_transformer,
        conditioning_embedding_out_channels=HINT_WIDTHS,
        **kwargs,
    ).eval()


def _inputs(family: str, batch: int = 2, h: int = 8, w: int = 12):
    config = FAMILIES[family].unet_tiny
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(batch, 4, h, w, generator=gen)
    hint = torch.rand(batch, 3, h * 8, w * 8, generator=gen)
    t = torch.tensor([10.0, 731.5])[:batch]
    context = torch.randn(batch, 7, config.context_dim, generator=gen)
    y, added = None, None
    if config.adm_in_channels:
        pooled = torch.randn(batch, 32, generator=gen)
        y = sdxl_adm(pooled, width=96, height=128, crop_w=8, crop_h=16, target_width=1024, target_height=768)
        added = {"text_embeds": pooled, "time_ids": torch.tensor([[128.0, 96.0, 16.0, 8.0, 768.0, 1024.0]]).repeat(
            batch, 1)}
    return config, x, hint, t, context, y, added


def _ours_from_diffusers(ref, config: UNetConfig) -> ControlNetModel:
    ldm = convert_diffusers_controlnet(ref.state_dict())
    heads = {"num_heads": config.num_heads, "num_head_channels": config.num_head_channels}
    found = controlnet_config(ldm, heads)
    assert found == ControlNetConfig(config, 3, HINT_WIDTHS)  # the config read back from the shapes
    ours = ControlNetModel(found).eval()
    ours.load_state_dict(ldm, strict=True)
    return ours


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_controlnet_matches_diffusers(family):
    config, x, hint, t, context, y, added = _inputs(family)
    ref = randomize_(_diffusers_controlnet(config), seed=4)  # zero convs random too: residuals far from zero
    ours = _ours_from_diffusers(ref, config)
    with torch.no_grad():
        got = ours(x, hint, t, context, y)
        down, mid = ref(x, t, encoder_hidden_states=context, controlnet_cond=hint, added_cond_kwargs=added,
                        return_dict=False)
    assert len(got["output"]) == len(down) == 6 and len(got["middle"]) == 1
    for mine, theirs in zip([*got["output"], *got["middle"]], [*down, mid], strict=True):
        assert theirs.std() > 0.01
        assert (mine - theirs).abs().max().item() <= TOL


def test_single_file_layouts_read_as_the_diffusers_one():
    config = FAMILIES["sd1"].unet_tiny
    ref = randomize_(_diffusers_controlnet(config), seed=5)
    ldm = convert_diffusers_controlnet(ref.state_dict())
    from_diffusers = to_ldm(ref.state_dict(), "diffusers")
    from_prefixed = to_ldm({"control_model." + k: v for k, v in ldm.items()}, "prefixed")
    from_bare = to_ldm(ldm, "bare")
    assert from_diffusers.keys() == from_prefixed.keys() == from_bare.keys() == set(ldm)
    for key in ldm:
        assert torch.equal(from_prefixed[key], from_diffusers[key]) and torch.equal(from_bare[key], from_diffusers[key])


def test_unet_adds_controlnet_residuals_as_diffusers_does():
    config, x, hint, t, context, y, added = _inputs("sd1")
    unet = randomize_(UNetModel(config).eval(), seed=6)
    ref = _diffusers_unet(config)
    ref.load_state_dict(convert_unet(unet.state_dict(), config), strict=True)
    gen = torch.Generator().manual_seed(7)
    cn = randomize_(ControlNetModel(ControlNetConfig(config, 3, HINT_WIDTHS)).eval(), seed=8)
    with torch.no_grad():
        control = cn(x, hint, t, context, y)
        control["output"] = [r * (1 + torch.rand(1, generator=gen)) for r in control["output"]]
        got = unet(x, t, context, y, control=control)
        plain = unet(x, t, context, y)
        want = ref(x, t, encoder_hidden_states=context, added_cond_kwargs=added,
                   down_block_additional_residuals=tuple(control["output"]),
                   mid_block_additional_residual=control["middle"][0]).sample
    assert (got - plain).abs().max() > 0.05  # the residuals change the prediction
    assert (got - want).abs().max().item() <= TOL


@pytest.mark.parametrize("adapter_type", ["full_adapter", "full_adapter_xl"])
def test_t2i_adapter_matches_diffusers(adapter_type):
    xl = adapter_type == "full_adapter_xl"
    ref = randomize_(diffusers.T2IAdapter(in_channels=3, channels=[32, 64, 128, 128], num_res_blocks=2,
                                          downscale_factor=16 if xl else 8, adapter_type=adapter_type).eval(), seed=9)
    state = convert_diffusers_adapter(ref.state_dict())
    ours = build_adapter(state).eval()
    ours.load_state_dict(state, strict=True)
    hint = torch.rand(2, 3, 256, 128, generator=torch.Generator().manual_seed(10))  # even sizes at every level
    with torch.no_grad():
        got = ours(hint)
        want = ref(hint)
    # Ours are placed for the UNet (the input list is used from its end; SDXL's deepest feature is the middle's).
    features = [f for f in reversed(got["input"]) if f is not None] + got.get("middle", [])
    assert len(features) == len(want) == 4
    for mine, theirs in zip(features, want, strict=True):
        assert (mine - theirs).abs().max().item() <= TOL


def test_unet_adds_t2i_features_as_diffusers_does():
    config = FAMILIES["sd1"].unet_tiny
    unet = randomize_(UNetModel(config).eval(), seed=11)
    ref = _diffusers_unet(config)
    ref.load_state_dict(convert_unet(unet.state_dict(), config), strict=True)
    adapter = randomize_(build_adapter({"conv_in.weight": torch.zeros(32, 192, 3, 3),
                                        "body.0.block2.weight": torch.zeros(32, 32, 1, 1)}).eval(), seed=12)
    gen = torch.Generator().manual_seed(13)
    x, t = torch.randn(2, 4, 8, 8, generator=gen), torch.tensor([20.0, 500.0])
    context = torch.randn(2, 7, config.context_dim, generator=gen)
    with torch.no_grad():
        features = adapter(torch.rand(2, 3, 64, 64, generator=gen))
        got = unet(x, t, context, control=features)
        levels = [f for f in reversed(features["input"]) if f is not None][:2]  # the tiny UNet has two levels
        want = ref(x, t, encoder_hidden_states=context, down_intrablock_additional_residuals=list(levels)).sample
        plain = unet(x, t, context)
    assert (got - plain).abs().max() > 0.01
    assert (got - want).abs().max().item() <= TOL


def test_light_adapter_reads_back_and_fits_the_unet_blocks(caplog):
    from hearth_sd.t2i_adapter import LightAdapter

    config = FAMILIES["sd1"].unet_tiny
    made = randomize_(LightAdapter(192, [32, 64, 128, 128], [8, 16, 32, 32], nums_rb=2).eval(), seed=14)
    state = made.state_dict()
    read = build_adapter(state).eval()
    read.load_state_dict(state, strict=True)
    hint = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(15))
    unet = randomize_(UNetModel(config).eval(), seed=16)
    x, t, context = torch.randn(1, 4, 8, 8), torch.tensor([300.0]), torch.randn(1, 7, config.context_dim)
    with torch.no_grad(), caplog.at_level("WARNING"):
        features = read(hint)
        for got, want in zip(features["input"], made(hint)["input"], strict=True):
            assert (got is None and want is None) or torch.equal(got, want)
        out = unet(x, t, context, control=features)
    assert not caplog.records  # each feature met a block of its size: the level's last input block
    assert (out - unet(x, t, context)).abs().max() > 0.01


def test_a_residual_that_does_not_fit_is_skipped_with_a_warning(caplog):
    config = FAMILIES["sd1"].unet_tiny
    unet = randomize_(UNetModel(config).eval(), seed=17)
    x, t, context = torch.randn(1, 4, 8, 8), torch.tensor([300.0]), torch.randn(1, 7, config.context_dim)
    with torch.no_grad(), caplog.at_level("WARNING"):
        out = unet(x, t, context, control={"middle": [torch.ones(1, 64, 3, 3)], "output": [None] * 6})
        plain = unet(x, t, context)
    assert torch.equal(out, plain)  # as ComfyUI's apply_control: warned and left out, not an error
    assert "does not fit" in caplog.text


def _comfy_union_hint(sd: dict, encoded: torch.Tensor, control_type: int) -> torch.Tensor:
    """ComfyUI's union_controlnet_merge for one hint, written out in float64 from the weights (an independent
    reference: pre-norm block, packed q/k/v, 8 heads, QuickGELU MLP)."""
    w = {k: v.double() for k, v in sd.items()}
    p = "transformer_layes.0."
    x = (encoded.double().mean(dim=(2, 3)) + w["task_embedding"][control_type])[:, None]  # [B, 1, C]

    def norm(t, name):
        return F.layer_norm(t, t.shape[-1:], w[p + name + ".weight"], w[p + name + ".bias"])

    q, k, v = F.linear(norm(x, "ln_1"), w[p + "attn.in_proj.weight"], w[p + "attn.in_proj.bias"]).chunk(3, dim=-1)
    b, n, c = q.shape
    heads = [t.view(b, n, 8, c // 8).transpose(1, 2) for t in (q, k, v)]
    att = torch.softmax(heads[0] @ heads[1].transpose(-1, -2) / (c // 8) ** 0.5, dim=-1) @ heads[2]
    x = x + F.linear(att.transpose(1, 2).reshape(b, n, c), w[p + "attn.out_proj.weight"], w[p + "attn.out_proj.bias"])
    hidden = F.linear(norm(x, "ln_2"), w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"])
    x = x + F.linear(hidden * torch.sigmoid(1.702 * hidden), w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"])
    shift = F.linear(x[:, 0], w["spatial_ch_projs.weight"], w["spatial_ch_projs.bias"])
    return encoded.double() + shift[:, :, None, None]


def test_union_controlnet_reads_diffusers_files_and_runs_comfyuis_fusion():
    from hearth_sd.controlnet_union import union_hint

    config, x, hint, t, context, y, added = _inputs("sdxl")
    heads = tuple(config.heads_for(config.model_channels * m)[0] for m in config.channel_mult)
    ref = randomize_(diffusers.ControlNetUnionModel(
        down_block_types=tuple("CrossAttnDownBlock2D" if d else "DownBlock2D" for d in config.transformer_depth),
        block_out_channels=(32, 64), layers_per_block=2, cross_attention_dim=config.context_dim,
        transformer_layers_per_block=tuple(d or config.transformer_depth_middle for d in config.transformer_depth),
        attention_head_dim=heads, use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=256, projection_class_embeddings_input_dim=config.adm_in_channels,
        conditioning_embedding_out_channels=HINT_WIDTHS, num_control_type=8, num_trans_channel=32,
        num_proj_channel=32).eval(), seed=18)
    ldm = to_ldm(ref.state_dict(), "union")
    # Smaller hint convolutions than randomize_ gives, so the encoded hint is O(1) and the type's shift shows.
    ldm = {k: v * 0.1 if k.startswith("input_hint_block.") else v for k, v in ldm.items()}
    found = controlnet_config(ldm, {"num_heads": None, "num_head_channels": config.num_head_channels})
    assert found.union_types == 8
    ours = ControlNetModel(found).eval()
    ours.load_state_dict(ldm, strict=True)
    with torch.no_grad():
        # The type embedding is diffusers' (the same sinusoids and linears on the one-hot type vector).
        one_hot = torch.zeros(1, 8)
        one_hot[0, 3] = 1.0
        want = ref.control_add_embedding(ref.control_type_proj(one_hot.flatten()).reshape(1, -1))
        torch.testing.assert_close(ours.control_add_embedding([3], torch.float32, torch.device("cpu")), want,
                                   rtol=0, atol=TOL)
        # The fusion is ComfyUI's (the hint's feature alone through the transformer).
        encoded = ours.input_hint_block(hint)
        got = union_hint(ours, hint, [3])
        want = _comfy_union_hint(ldm, encoded, 3)
        assert encoded.abs().max() < 100 and (want - encoded).abs().max() > 0.1
        assert (got.double() - want).abs().max() <= TOL
        auto = ours(x, hint, t, context, y, control_type=[])
        typed = ours(x, hint, t, context, y, control_type=[3])
        assert (auto["middle"][0] - typed["middle"][0]).abs().max() > 1e-3
        with pytest.raises(ValueError, match="control type \\[9\\]"):
            ours(x, hint, t, context, y, control_type=[9])


def test_full_size_sd1_config_is_the_released_controlnet():
    with torch.device("meta"):  # shapes only
        ours = ControlNetModel(ControlNetConfig(FAMILIES["sd1"].unet))
    assert sum(p.numel() for p in ours.parameters()) == 361_279_120  # control_v11p_sd15_*: 361.28 M parameters


def test_unet_adds_sdxl_t2i_features_as_diffusers_does(caplog):
    # A three-level SDXL-like UNet (no attention on the first level, as SDXL), which the XL adapter's four
    # features fit: level ends at 1/2 and 1/4 of the latent, and the middle block.
    config = UNetConfig(model_channels=32, channel_mult=(1, 2, 4), transformer_depth=(0, 1, 1),
                        transformer_depth_middle=1, context_dim=32, num_heads=None, num_head_channels=8,
                        use_linear_in_transformer=True)
    unet = randomize_(UNetModel(config).eval(), seed=19)
    ref = _diffusers_unet(config)
    ref.load_state_dict(convert_unet(unet.state_dict(), config), strict=True)
    adapter = randomize_(diffusers.T2IAdapter(in_channels=3, channels=[32, 64, 128, 128], num_res_blocks=2,
                                              downscale_factor=16, adapter_type="full_adapter_xl").eval(), seed=20)
    state = convert_diffusers_adapter(adapter.state_dict())
    ours = build_adapter(state).eval()
    ours.load_state_dict(state, strict=True)
    gen = torch.Generator().manual_seed(21)
    x, t = torch.randn(1, 4, 16, 16, generator=gen), torch.tensor([400.0])
    context, hint = torch.randn(1, 7, 32, generator=gen), torch.rand(1, 3, 128, 128, generator=gen)
    with torch.no_grad(), caplog.at_level("WARNING"):
        got = unet(x, t, context, control=ours(hint))
        want = ref(x, t, encoder_hidden_states=context, down_intrablock_additional_residuals=adapter(hint)).sample
        plain = unet(x, t, context)
    assert not caplog.records  # all four features were added, the last to the middle block's output
    assert (got - plain).abs().max() > 0.01
    assert (got - want).abs().max().item() <= TOL
