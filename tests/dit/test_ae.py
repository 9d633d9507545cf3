"""Flux's 16-channel autoencoder: parity with diffusers' AutoencoderKL (Flux config), both file layouts through
VAELoader, make-tiny flux-vae, and the errors a wrong file gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hearth_dit.ae_model import SCALE_FACTOR, SHIFT_FACTOR, latent_in, latent_out
from hearth_dit.ae_tiny import TINY_AE, tiny_flux_vae_state
from safetensors.torch import save_file

from hearth.cli.main import cli
from hearth.core.runtime import Runtime, current_runtime

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


def reference(state: dict[str, torch.Tensor]) -> diffusers.AutoencoderKL:
    """diffusers' AutoencoderKL with the Flux config at the tiny widths, given the same weights."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    widths = [TINY_AE.ch * m for m in TINY_AE.ch_mult]
    config = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * len(widths),
                  up_block_types=["UpDecoderBlock2D"] * len(widths), block_out_channels=widths,
                  layers_per_block=TINY_AE.num_res_blocks, latent_channels=16, norm_num_groups=32,
                  use_quant_conv=False, use_post_quant_conv=False, scaling_factor=SCALE_FACTOR,
                  shift_factor=SHIFT_FACTOR)
    model = diffusers.AutoencoderKL(**config).eval()
    converted = convert_ldm_vae_checkpoint(state, config)  # diffusers' own reading of the published layout
    model.load_state_dict(converted, strict=True)
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flux_ae") / "models"
    (folder / "vae").mkdir(parents=True)
    target = folder / "vae" / "tiny-flux-ae.safetensors"
    result = CliRunner().invoke(cli, ["models", "make-tiny", "flux-vae", "--out", str(target)])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def folders(models: Path):
    with Runtime.build(models_dir=models, environ={}).activate():
        yield models


def load(name: str):
    return current_runtime().nodes["VAELoader"].cls().load_vae(name)[0]


def test_make_tiny_writes_the_published_layout(models: Path) -> None:
    from hearth.core.models import read_header

    shapes = read_header(models / "vae" / "tiny-flux-ae.safetensors").shapes
    assert shapes["encoder.conv_out.weight"][0] == 32 and shapes["decoder.conv_in.weight"][1] == 16
    assert "encoder.down.0.block.0.conv1.weight" in shapes and "decoder.up.3.upsample.conv.weight" in shapes
    assert "quant_conv.weight" not in shapes and "encoder.mid.attn_1.q.weight" in shapes


def test_encode_and_decode_equal_diffusers(folders: Path) -> None:
    from hearth.core.models import load_state_dict

    vae = load("tiny-flux-ae.safetensors")
    ref = reference(dict(load_state_dict(folders / "vae" / "tiny-flux-ae.safetensors")))
    image = torch.rand(2, 40, 56, 3, generator=torch.Generator().manual_seed(0))
    latent = vae.encode(image)
    assert latent.shape == (2, 16, 5, 7) and vae.latent_channels == 16 and vae.downscale_ratio == 8
    with torch.no_grad():
        want = ref.encode(image.movedim(-1, 1) * 2 - 1).latent_dist.mode()
        torch.testing.assert_close(latent, want, rtol=0, atol=1e-4)
        z = torch.randn(1, 16, 4, 6, generator=torch.Generator().manual_seed(1))
        pixels = ((ref.decode(z).sample + 1) / 2).clamp(0, 1).movedim(1, -1)
    torch.testing.assert_close(vae.decode(z), pixels, rtol=0, atol=1e-4)
    # The family's latent format, as diffusers' Flux pipeline scales latents before the transformer.
    torch.testing.assert_close(latent_in(latent), (want - ref.config.shift_factor) * ref.config.scaling_factor)
    torch.testing.assert_close(latent_out(latent_in(latent)), latent)


def test_tiled_decode_matches_whole_decode_where_tiles_do_not_overlap_edges(folders: Path) -> None:
    vae = load("tiny-flux-ae.safetensors")
    z = torch.randn(1, 16, 6, 6, generator=torch.Generator().manual_seed(2))
    assert vae.decode_tiled(z, tile=8, overlap=2).shape == vae.decode(z).shape == (1, 48, 48, 3)
    torch.testing.assert_close(vae.decode_tiled(z, tile=8, overlap=2), vae.decode(z), rtol=0, atol=1e-6)


def test_a_diffusers_layout_file_loads_to_the_same_model(folders: Path, tmp_path: Path) -> None:
    state = tiny_flux_vae_state(seed=5)
    path = folders / "vae" / "diffusers-ae.safetensors"
    save_file({k: v.contiguous() for k, v in reference(state).state_dict().items()}, str(path))
    save_file(state, str(folders / "vae" / "published-ae.safetensors"))
    image = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(load("diffusers-ae.safetensors").encode(image),
                               load("published-ae.safetensors").encode(image), rtol=0, atol=1e-6)


def test_an_sd_vae_stays_sd_and_a_wrong_latent_is_named(folders: Path) -> None:
    from hearth.core.models import detect_with_plugins

    state = tiny_flux_vae_state(seed=1)
    sd_like = dict(state, **{"quant_conv.weight": torch.zeros(32, 32, 1, 1), "quant_conv.bias": torch.zeros(32)})
    save_file(sd_like, str(folders / "vae" / "sd-like.safetensors"))
    found = detect_with_plugins(folders / "vae" / "sd-like.safetensors", current_runtime().plugins)
    assert found.name == "sd_vae"
    assert detect_with_plugins(folders / "vae" / "tiny-flux-ae.safetensors", current_runtime().plugins).name == "flux_ae"
    four = {k: v for k, v in state.items()}
    four["encoder.conv_out.weight"] = four["encoder.conv_out.weight"][:8].contiguous()
    four["encoder.conv_out.bias"] = four["encoder.conv_out.bias"][:8].contiguous()
    save_file(four, str(folders / "vae" / "four.safetensors"))
    with pytest.raises(ValueError, match="4 latent channels, not Flux's 16-channel ae"):
        load("four.safetensors")
    with pytest.raises(ValueError, match=r"decodes \[B, 16, h, w\] latents, got \[1, 4, 8, 8\]"):
        load("tiny-flux-ae.safetensors").decode(torch.zeros(1, 4, 8, 8))

