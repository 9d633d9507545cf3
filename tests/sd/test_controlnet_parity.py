"""ControlNet and T2I-Adapter parity with diffusers on tiny random configs (fp32, same weights loaded both ways):
the networks' residuals, the three ControlNet file layouts, and where the UNet adds the residuals."""

from __future__ import annotations

import pytest
import torch
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
