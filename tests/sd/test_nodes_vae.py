"""VAE nodes: equal to the VAE's own encode/decode, tiled close to untiled, inpaint masking as ComfyUI does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_sd import load_vae
from hearth_sd.model import VAE
from hearth_sd.nodes_vae import VAEDecode, VAEDecodeTiled, VAEEncode, VAEEncodeForInpaint, VAEEncodeTiled
from hearth_sd.sd_model import SDVAE
from hearth_sd.vae import AutoencoderKL, VAEConfig

from hearth.core.models import PatchedModel
from hearth.core.models.loader_nodes import VAELoader
from tests.sd.nodes_testing import image, in_runtime, make_models


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def vaes(models):
    with in_runtime(models):
        (node_vae,) = VAELoader().load_vae("tiny-vae.safetensors")
    return node_vae, load_vae(models / "vae" / "tiny-vae.safetensors")


def test_encode_and_decode_are_the_vae_s(vaes):
    vae, direct = vaes
    pixels = image(2, 32, 48)
    (latent,) = VAEEncode().encode(vae, pixels)
    assert set(latent) == {"samples"} and latent["samples"].shape == (2, 4, 4, 6)  # the tiny VAE downscales by 8
    torch.testing.assert_close(latent["samples"], direct.encode(pixels), rtol=0, atol=0)
    (decoded,) = VAEDecode().decode(vae, latent)
    torch.testing.assert_close(decoded, direct.decode(latent["samples"]), rtol=0, atol=0)
    assert decoded.shape == (2, 32, 48, 3)


def test_sizes_off_the_grid_are_cropped_around_the_centre():
    # An 8x VAE built here (as the tiny files' is), with its own seed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = AutoencoderKL(VAEConfig(ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1)).eval()
    direct = VAE(module)
    vae = SDVAE(direct, PatchedModel(module, name="8x"))
    pixels = torch.cat([image(1, 35, 45), torch.ones(1, 35, 45, 1)], dim=-1)  # off the grid, with alpha
    (latent,) = VAEEncode().encode(vae, pixels)
    assert vae.downscale_ratio == 8 and latent["samples"].shape == (1, 4, 4, 5)
    torch.testing.assert_close(latent["samples"], direct.encode(pixels[:, 1:33, 2:42, :3]), rtol=0, atol=0)


def test_tiled_is_close_to_untiled(vaes):
    vae, _ = vaes
    gen = torch.Generator().manual_seed(4)
    # Spatially uniform statistics: each tile's GroupNorm then sees about what the whole image gives it, as with
    # real images on real VAEs; a random VAE on a gradient would differ by its normalisation alone.
    latent = {"samples": torch.randn(1, 4, 32, 48, generator=gen)}
    (whole,) = VAEDecode().decode(vae, latent)
    (unrelated,) = VAEDecode().decode(vae, {"samples": torch.randn(1, 4, 32, 48, generator=gen)})
    (tiles,) = VAEDecodeTiled().decode(vae, latent, tile_size=256, overlap=128)  # 1x2 tiles of 32 latent pixels
    assert tiles.shape == whole.shape
    error = (tiles - whole).abs().mean()
    assert 0 < error < 0.1 * (unrelated - whole).abs().mean()
    pixels = torch.rand(1, 256, 384, 3, generator=gen)
    (plain,) = VAEEncode().encode(vae, pixels)
    (tiled,) = VAEEncodeTiled().encode(vae, pixels, tile_size=256, overlap=128)
    error = (tiled["samples"] - plain["samples"]).abs().mean()
    assert 0 < error < 0.1 * (plain["samples"].flip(-1) - plain["samples"]).abs().mean()
    with pytest.raises(ValueError, match="overlap .* must be smaller than tile_size"):
        VAEEncodeTiled().encode(vae, pixels, tile_size=64, overlap=64)


def test_encode_for_inpaint_masks_as_comfyui_does(vaes):
    vae, direct = vaes
    pixels = image(1, 32, 48, seed=2)
    mask = torch.zeros(32, 48)
    mask[10:20, 20:30] = 1.0  # rows 10..19, columns 20..29
    (latent,) = VAEEncodeForInpaint().encode(vae, pixels, mask, grow_mask_by=6)
    # The masked pixels are grey (0.5) before encoding, the rest untouched.
    grey = pixels.clone()
    grey[:, 10:20, 20:30, :] = 0.5
    torch.testing.assert_close(latent["samples"], direct.encode(grey), rtol=0, atol=0)
    # A 6x6 box with padding 3 grows the mask 2 pixels up/left and 3 down/right; full resolution, 0 or 1.
    want = torch.zeros(1, 1, 32, 48)
    want[:, :, 8:23, 18:33] = 1.0
    torch.testing.assert_close(latent["noise_mask"], want, rtol=0, atol=0)
    (plain,) = VAEEncodeForInpaint().encode(vae, pixels, mask, grow_mask_by=0)
    torch.testing.assert_close(plain["noise_mask"], mask[None, None], rtol=0, atol=0)


def test_encode_for_inpaint_resizes_the_mask_to_the_image(vaes):
    vae, _ = vaes
    pixels = image(1, 64, 64)
    small = torch.zeros(1, 32, 32)
    small[:, :16, :] = 1.0  # the top half, at half resolution
    (latent,) = VAEEncodeForInpaint().encode(vae, pixels, small, grow_mask_by=0)
    assert latent["noise_mask"].shape == (1, 1, 64, 64)
    assert latent["noise_mask"][0, 0, :31].eq(1).all() and latent["noise_mask"][0, 0, 33:].eq(0).all()


def test_a_latent_of_another_family_is_refused_by_name(vaes):
    vae, _ = vaes
    with pytest.raises(ValueError, match=r"tiny-vae.safetensors\) decodes \[B, 4, h, w\] latents, got \[1, 16, 8, 8\]"):
        VAEDecode().decode(vae, {"samples": torch.zeros(1, 16, 8, 8)})
