"""Our UNet, VAE and text encoders give the same numbers as diffusers / transformers on the same weights."""

from __future__ import annotations

import pytest
import torch
from hearth_sd.clip_text import CLIPTextEncoder
from hearth_sd.families import FAMILIES, SD1
from hearth_sd.open_clip_text import OpenCLIPTextEncoder
from hearth_sd.sdxl_conditioning import sdxl_adm, sdxl_refiner_adm
from hearth_sd.unet import UNetConfig, UNetModel
from hearth_sd.vae import AutoencoderKL

from .ldm_to_diffusers import convert_open_clip, convert_unet, convert_vae
from .sd_testing import randomize_

diffusers = pytest.importorskip("diffusers", reason="diffusers is a test dependency (requirements/dev.txt)")
transformers = pytest.importorskip("transformers", reason="transformers is a test dependency")

TOL = 1e-4


def _diffusers_unet(c: UNetConfig):
    heads = tuple(c.heads_for(c.model_channels * m)[0] for m in c.channel_mult)
    kwargs = {}
    if c.adm_in_channels:
        kwargs = dict(
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=c.adm_in_channels,
        )
    return diffusers.UNet2DConditionModel(
        sample_size=16,
        in_channels=c.in_channels,
        out_channels=c.out_channels,
        down_block_types=tuple("CrossAttnDownBlock2D" if d else "DownBlock2D" for d in c.transformer_depth),
        up_block_types=tuple(
            "CrossAttnUpBlock2D" if d else "UpBlock2D" for d in reversed(c.transformer_depth)
        ),
        block_out_channels=tuple(c.model_channels * m for m in c.channel_mult),
        layers_per_block=c.num_res_blocks,
        transformer_layers_per_block=tuple(d or c.transformer_depth_middle for d in c.transformer_depth),
        cross_attention_dim=c.context_dim,
        attention_head_dim=heads,
        use_linear_projection=c.use_linear_in_transformer,
        flip_sin_to_cos=True,
        freq_shift=0,
        **kwargs,
    ).eval()


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl", "sdxl_refiner"])
def test_unet_matches_diffusers(family):
    config = FAMILIES[family].unet_tiny
    ours = randomize_(UNetModel(config).eval(), seed=1)
    ref = _diffusers_unet(config)
    ref.load_state_dict(convert_unet(ours.state_dict(), config), strict=True)

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 16, 12, generator=gen)
    t = torch.tensor([10.0, 731.5])
    context = torch.randn(2, 7, config.context_dim, generator=gen)
    y, added = None, None
    if family == "sdxl":
        pooled = torch.randn(2, 32, generator=gen)
        y = sdxl_adm(pooled, width=96, height=128, crop_w=8, crop_h=16, target_width=1024, target_height=768)
        time_ids = torch.tensor([[128.0, 96.0, 16.0, 8.0, 768.0, 1024.0]]).repeat(2, 1)
        added = {"text_embeds": pooled, "time_ids": time_ids}
    elif family == "sdxl_refiner":
        pooled = torch.randn(2, 32, generator=gen)
        y = sdxl_refiner_adm(pooled, width=96, height=128, crop_w=8, crop_h=16, aesthetic_score=2.5)
        added = {"text_embeds": pooled, "time_ids": torch.tensor([[128.0, 96.0, 16.0, 8.0, 2.5]]).repeat(2, 1)}

    with torch.no_grad():
        got = ours(x, t, context, y)
        want = ref(x, t, encoder_hidden_states=context, added_cond_kwargs=added).sample
    assert want.std() > 0.01  # the comparison means something only if the output is not near zero
    assert (got - want).abs().max().item() <= TOL


def test_unet_handles_odd_latent_sizes():
    """A 17x9 latent (an image size not divisible by 16) comes out of the UNet at its own size."""
    config = SD1.unet_tiny
    unet = UNetModel(config).eval()
    x = torch.randn(1, 4, 17, 9)
    with torch.no_grad():
        out = unet(x, torch.tensor([500.0]), torch.randn(1, 77, config.context_dim))
    assert out.shape == x.shape


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_vae_matches_diffusers(family):
    config = FAMILIES[family].vae_tiny
    ours = randomize_(AutoencoderKL(config).eval(), seed=3)
    n = len(config.ch_mult)
    ref = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(config.ch * m for m in config.ch_mult),
        layers_per_block=config.num_res_blocks,
        latent_channels=config.z_channels,
        norm_num_groups=32,
    ).eval()
    ref.load_state_dict(convert_vae(ours.state_dict(), config), strict=True)

    gen = torch.Generator().manual_seed(4)
    images = torch.rand(2, 3, 96, 128, generator=gen) * 2 - 1  # the tiny VAE downscales by 8, as real ones do
    latents = torch.randn(2, 4, 12, 16, generator=gen)
    with torch.no_grad():
        enc, want_enc = ours.encode(images), ref.encode(images).latent_dist.mean
        dec, want_dec = ours.decode(latents), ref.decode(latents).sample
    assert enc.shape == (2, 4, 12, 16)
    assert want_enc.std() > 0.1 and want_dec.std() > 0.1
    assert (enc - want_enc).abs().max().item() <= TOL
    assert (dec - want_dec).abs().max().item() <= TOL


def _hf_config(c, **extra):
    return transformers.CLIPTextConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.width,
        intermediate_size=c.intermediate,
        num_hidden_layers=c.layers,
        num_attention_heads=c.heads,
        max_position_embeddings=c.max_positions,
        hidden_act=c.activation,
        layer_norm_eps=c.eps,
        bos_token_id=49406,
        eos_token_id=49407,
        **extra,
    )


def _tokens(batch: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    tokens = torch.randint(1, 49406, (batch, 77), generator=gen)
    tokens[:, 0] = 49406
    for row, end in enumerate([9, 40][:batch]):
        tokens[row, end] = 49407
        tokens[row, end + 1 :] = 0 if row else 49407  # both padding styles
    return tokens


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_clip_l_matches_transformers(family):
    spec = FAMILIES[family].text_encoders[0]
    ours = randomize_(CLIPTextEncoder(spec.tiny).eval(), seed=6)
    ref = transformers.CLIPTextModel(_hf_config(spec.tiny)).eval()
    state = ours.state_dict()
    if not any(k.startswith("text_model.") for k in ref.state_dict()):
        # transformers 5 dropped the ``text_model.`` level from CLIPTextModel's own names.
        state = {k.removeprefix("text_model."): v for k, v in state.items()}
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing)
    final_norm = dict(ref.named_modules()).get("text_model.final_layer_norm") or ref.final_layer_norm

    tokens = _tokens()
    with torch.no_grad():
        out = ref(tokens, output_hidden_states=True)
        last = ours(tokens)
        skip = ours(tokens, layer=-2, norm_hidden=spec.norm_hidden)
    assert (last.hidden - out.last_hidden_state).abs().max().item() <= TOL
    assert (last.pooled - out.pooler_output).abs().max().item() <= TOL
    want_skip = out.hidden_states[-2]
    if spec.norm_hidden:
        want_skip = final_norm(want_skip)
    assert (skip.hidden - want_skip).abs().max().item() <= TOL


@pytest.mark.parametrize("family", ["sd2", "sdxl", "sdxl_refiner"])
def test_open_clip_matches_transformers(family):
    spec = FAMILIES[family].text_encoders[-1]
    ours = randomize_(OpenCLIPTextEncoder(spec.tiny).eval(), seed=7)
    ref = transformers.CLIPTextModelWithProjection(
        _hf_config(spec.tiny, projection_dim=spec.tiny.projection_dim)
    ).eval()
    missing, unexpected = ref.load_state_dict(convert_open_clip(ours.state_dict()), strict=False)
    assert not unexpected and all("position_ids" in k for k in missing)

    tokens = _tokens()
    with torch.no_grad():
        out = ref(tokens, output_hidden_states=True)
        got = ours(tokens, layer=spec.default_layer, norm_hidden=spec.norm_hidden)
        last = ours(tokens, layer=-1)
    assert (got.hidden - out.hidden_states[-2]).abs().max().item() <= TOL
    assert (last.hidden - out.hidden_states[-1]).abs().max().item() <= TOL
    assert (got.pooled - out.text_embeds).abs().max().item() <= TOL
    assert out.text_embeds.std() > 0.1


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_unet_backward_runs(family):
    """The in-place residual adds are on fresh layer outputs only: gradients still flow (training, LoRA)."""
    config = FAMILIES[family].unet_tiny
    unet = UNetModel(config)
    y = torch.randn(1, config.adm_in_channels) if config.adm_in_channels else None
    out = unet(torch.randn(1, 4, 8, 8), torch.tensor([3.0]), torch.randn(1, 5, config.context_dim), y)
    out.square().mean().backward()
    assert all(p.grad is not None for p in unet.parameters())


# Parameter counts of the released models (UNet, text encoders, VAE), as their model cards and diffusers report.
RELEASED = {"sd1": 859_520_964, "sd2": 865_910_724, "sdxl": 2_567_463_684}
TEXT_RELEASED = {"l": 123_060_480, "g": 694_659_840 + 1}  # + logit_scale, which the checkpoints carry


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl", "sdxl_refiner"])
def test_full_size_configs_are_the_released_architectures(family):
    """Built on the meta device (no memory): our full-size UNet has diffusers' keys and shapes for the same
    released config, and the released parameter counts."""
    fam = FAMILIES[family]
    with torch.device("meta"):
        ours = UNetModel(fam.unet)
        ref = _diffusers_unet(fam.unet)
        encoders = {
            s.name: (CLIPTextEncoder if s.layout == "hf" else OpenCLIPTextEncoder)(s.config) for s in fam.text_encoders
        }
        vae = AutoencoderKL(fam.vae)
    converted = {k: tuple(v.shape) for k, v in convert_unet(ours.state_dict(), fam.unet).items()}
    assert converted == {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    if family in RELEASED:
        assert sum(p.numel() for p in ours.parameters()) == RELEASED[family]
    for name, encoder in encoders.items():
        if name in TEXT_RELEASED:
            assert sum(p.numel() for p in encoder.parameters()) == TEXT_RELEASED[name]
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863
