"""The Wan 2.1 causal 3D VAE: parity with diffusers' AutoencoderKLWan, chunked == whole, the VAE value and loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_video.wan_vae import (
    LATENTS_MEAN,
    WanVAEModel,
    build_model,
    config_from_shapes,
    decode_memory_estimate,
    denormalize_latents,
    load_wan_vae,
    normalize_latents,
    tiny_config,
    write_tiny_wan_vae,
)
from safetensors.torch import save_file

from hearth.core.models import CheckpointError

FRAMES = 9  # 1 + 4 + 4: the first frame alone, then two causal chunks


@pytest.fixture(autouse=True)
def _one_thread():
    # The suite shares two cores with other jobs; one thread per test process avoids OpenMP barrier stalls there.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wan_vae") / "tiny-wan-vae.safetensors"
    write_tiny_wan_vae(path, seed=3)
    return path


@pytest.fixture(scope="module")
def model(tiny_file: Path) -> WanVAEModel:
    from hearth.core.models import load_state_dict

    return build_model(load_state_dict(tiny_file), str(tiny_file))


def clip(frames: int = FRAMES, size: int = 32, seed: int = 0) -> torch.Tensor:
    """A moving gradient with noise, ``[1, 3, T, H, W]`` in -1..1: every frame differs from the last."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames)[:, None, None] / frames
    ys = torch.linspace(-1, 1, size)[None, :, None]
    xs = torch.linspace(-1, 1, size)[None, None, :]
    base = torch.stack([torch.sin(3 * xs + 4 * t) + 0 * ys, torch.cos(2 * ys - 3 * t) + 0 * xs, xs * ys + t], dim=0)
    return (0.7 * base + 0.2 * torch.randn(3, frames, size, size, generator=g)).clamp(-1, 1).unsqueeze(0)


def diffusers_vae(model: WanVAEModel):
    diffusers = pytest.importorskip("diffusers")
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    config = model.config
    reference = diffusers.AutoencoderKLWan(base_dim=config.base_dim, z_dim=config.z_dim, dim_mult=list(config.dim_mult),
                                           num_res_blocks=config.num_res_blocks,
                                           temperal_downsample=list(config.temporal_downsample))
    reference.load_state_dict(convert_wan_vae_to_diffusers(dict(model.state_dict())), strict=True)
    return reference.eval()


def test_tiny_file_is_the_published_layout(tiny_file: Path) -> None:
    from hearth.core.models import read_header

    shapes = read_header(tiny_file).shapes
    assert shapes["encoder.conv1.weight"] == (8, 3, 3, 3, 3)
    assert shapes["encoder.downsamples.5.time_conv.weight"] == (16, 16, 3, 1, 1)  # downsample3d
    assert "encoder.downsamples.2.time_conv.weight" not in shapes  # downsample2d
    assert shapes["decoder.upsamples.3.time_conv.weight"] == (64, 32, 3, 1, 1)  # upsample3d doubles channels
    assert shapes["decoder.upsamples.4.shortcut.weight"] == (32, 16, 1, 1, 1)
    assert shapes["encoder.middle.1.to_qkv.weight"] == (96, 32, 1, 1)
    assert shapes["conv1.weight"] == (32, 32, 1, 1, 1) and shapes["conv2.weight"] == (16, 16, 1, 1, 1)
    assert config_from_shapes(shapes) == tiny_config()


def test_the_published_size_builds_from_its_shapes() -> None:
    from hearth_video.wan_vae import WanVAEConfig

    with torch.device("meta"):
        model = WanVAEModel(WanVAEConfig())
    state = model.state_dict()
    # The published wan_2.1_vae file: 194 tensors, 126.9M parameters (254 MB in bfloat16).
    assert len(state) == 194 and round(sum(v.numel() for v in state.values()) / 1e6, 1) == 126.9
    assert config_from_shapes({k: tuple(v.shape) for k, v in state.items()}) == WanVAEConfig()


def test_matches_diffusers_on_encode_and_decode(model: WanVAEModel) -> None:
    reference = diffusers_vae(model)
    x = clip(size=16)
    latent = torch.randn(1, 16, 3, 3, 2, generator=torch.Generator().manual_seed(1))  # not square: h and w kept apart
    with torch.no_grad():
        ours = model.encode(x)
        theirs = reference.encode(x).latent_dist.mean
        decoded = model.decode(latent)
        expected = reference.decode(latent).sample
    assert ours.shape == (1, 16, 3, 2, 2)
    assert decoded.shape == (1, 3, FRAMES, 24, 16)
    assert (ours - theirs).abs().max() <= 1e-4
    assert (decoded - expected).abs().max() <= 1e-4
    assert decoded.std() > 0.05  # not a clamped, constant picture that any network would match


def test_chunked_equals_whole_clip(model: WanVAEModel) -> None:
    x = clip(13)
    latent = torch.randn(1, 16, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (model.encode(x, chunked=True) - model.encode(x, chunked=False)).abs().max() <= 1e-5
        chunked, whole = model.decode(latent, chunked=True), model.decode(latent, chunked=False)
        chunks = [c.shape[2] for c in model.decode_chunks(latent)]
    assert chunked.shape == whole.shape == (1, 3, 13, 32, 32)
    assert (chunked - whole).abs().max() <= 1e-5
    assert chunks == [1, 4, 4, 4]


def test_causal_a_later_frame_never_changes_an_earlier_latent(model: WanVAEModel) -> None:
    x = clip()
    changed = x.clone()
    changed[:, :, 5:] = -changed[:, :, 5:]  # frames 5..8 belong to the third latent frame only
    with torch.no_grad():
        a, b = model.encode(x), model.encode(changed)
    assert torch.equal(a[:, :, :2], b[:, :, :2])
    assert (a[:, :, 2] - b[:, :, 2]).abs().max() > 1e-3


def test_latent_format_round_trips() -> None:
    raw = torch.randn(1, 16, 2, 3, 3)
    scaled = normalize_latents(raw)
    assert torch.allclose(denormalize_latents(scaled), raw, atol=1e-6)
    assert torch.allclose(normalize_latents(torch.tensor(LATENTS_MEAN).view(1, 16, 1, 1, 1)), torch.zeros(1, 16, 1, 1, 1))


def test_vae_value_encodes_and_decodes_frames(tiny_file: Path, model: WanVAEModel) -> None:
    vae = load_wan_vae(tiny_file, device="cpu")
    assert (vae.downscale_ratio, vae.temporal_compression, vae.latent_channels) == (8, 4, 16)
    assert (vae.spacial_compression_decode(), vae.temporal_compression_decode(), vae.latent_dimensions) == (8, 4, 3)
    assert vae.first_stage_model is vae.model and vae.device == torch.device("cpu") and vae.vae_dtype == torch.float32
    pixels = ((clip(10, 36)[0].permute(1, 2, 3, 0) + 1) / 2)  # [10, 36, 36, 3]: 10 frames, off the 8-pixel grid
    latent = vae.encode(pixels)
    assert latent.shape == (1, 16, 3, 4, 4)  # frames 0..8 used; 36 px cropped to 32 around the centre
    with torch.no_grad():
        expected = model.encode(pixels[:9, 2:34, 2:34].permute(3, 0, 1, 2).unsqueeze(0) * 2 - 1)
    assert (latent - expected).abs().max() <= 1e-5
    frames = vae.decode(latent)
    assert frames.shape == (9, 32, 32, 3) and frames.min() >= 0 and frames.max() <= 1
    with torch.no_grad():
        whole = (model.decode(latent, chunked=False)[0].permute(1, 2, 3, 0) + 1) / 2
    assert (frames - whole).abs().max() <= 1e-5
    two = vae.decode(torch.cat([latent, -latent]))  # a batch of two clips: their frames one after the other
    assert two.shape == (18, 32, 32, 3) and torch.allclose(two[:9], frames, atol=1e-6)
    assert not torch.allclose(two[9:], frames, atol=1e-2)


def test_tiled_decode_and_encode_with_one_tile_equal_the_plain_ones(tiny_file: Path) -> None:
    vae = load_wan_vae(tiny_file, device="cpu")
    latent = torch.randn(1, 16, 2, 6, 6, generator=torch.Generator().manual_seed(4))
    frames = vae.decode(latent)
    assert torch.allclose(vae.decode_tiled(latent, tile=8, overlap=2), frames, atol=1e-5)
    tiled = vae.decode_tiled(latent, tile=4, overlap=2)
    assert tiled.shape == frames.shape == (5, 48, 48, 3)
    assert (tiled - frames).abs().mean() < 0.1  # tiles see less context, but blend into the same picture
    pixels = (clip(5, 48)[0].permute(1, 2, 3, 0) + 1) / 2
    latent = vae.encode(pixels)
    assert torch.allclose(vae.encode_tiled(pixels, tile=64, overlap=16), latent, atol=1e-5)
    assert vae.encode_tiled(pixels, tile=32, overlap=16).shape == latent.shape == (1, 16, 2, 6, 6)
    assert not torch.is_inference(latent) and not torch.is_inference(frames)  # later nodes may update them in place


def test_tiles_blend_back_into_the_whole() -> None:
    from hearth_video.wan_vae_value import _tiled

    x = torch.randn(1, 2, 3, 11, 13, generator=torch.Generator().manual_seed(5))

    def up(window: torch.Tensor) -> torch.Tensor:  # a per-pixel map: tiling must not change it
        return (2 * window + 1).repeat_interleave(8, dim=-1).repeat_interleave(8, dim=-2)

    assert torch.allclose(_tiled(up, x, 4, 2, 8, 1), up(x), atol=1e-5)
    assert torch.allclose(_tiled(lambda w: w[..., ::8, ::8], up(x), 32, 16, 1, 8), 2 * x + 1, atol=1e-5)
    with pytest.raises(ValueError, match="overlap"):
        _tiled(up, x, 4, 4, 8, 1)


def test_sd_vae_nodes_take_video_latents(tiny_file: Path) -> None:
    nodes_vae = pytest.importorskip("hearth_sd.nodes_vae")
    vae = load_wan_vae(tiny_file, device="cpu")
    pixels = (clip(5, 16)[0].permute(1, 2, 3, 0) + 1) / 2
    (latent,) = nodes_vae.VAEEncode().encode(vae, pixels)
    assert latent["samples"].shape == (1, 16, 2, 2, 2)
    (images,) = nodes_vae.VAEDecode().decode(vae, latent)
    assert images.shape == (5, 16, 16, 3)
    (tiled,) = nodes_vae.VAEDecodeTiled().decode(vae, latent, tile_size=512, overlap=64)
    assert torch.allclose(tiled, images, atol=1e-5)


def test_decode_refuses_an_image_latent_of_another_family(tiny_file: Path) -> None:
    vae = load_wan_vae(tiny_file, device="cpu")
    with pytest.raises(ValueError, match=r"decodes \[B, 16, T, h, w\].*got \[1, 4, 8, 8\]"):
        vae.decode(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"encodes IMAGE frames \[F, H, W, 3\] \(at least one\), got shape \[0, 8, 8, 3\]"):
        vae.encode(torch.zeros(0, 8, 8, 3))


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    other = tmp_path / "sd-vae.safetensors"
    save_file({"decoder.conv_in.weight": torch.zeros(4, 4, 3, 3)}, str(other))
    with pytest.raises(CheckpointError, match=r"sd-vae\.safetensors: not a Wan 2\.1 VAE"):
        load_wan_vae(other)
    corrupt = tmp_path / "broken.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(CheckpointError, match=r"broken\.safetensors"):
        load_wan_vae(corrupt)


def test_memory_estimate_follows_chunking() -> None:
    config = tiny_config()
    chunked = decode_memory_estimate((1, 16, 21, 60, 104), config)
    whole = decode_memory_estimate((1, 16, 21, 60, 104), config, chunked=False)
    assert decode_memory_estimate((1, 16, 41, 60, 104), config) == chunked  # bounded: independent of length
    assert whole > 5 * chunked


def test_the_manager_is_asked_for_one_chunk_of_memory(tiny_file: Path) -> None:
    from hearth.core.models import ModelManager
    from hearth.core.runtime import Runtime

    class Recording(ModelManager):
        def load(self, models, *, memory_required=None, **kwargs):
            asked.append(memory_required)
            return super().load(models, memory_required=memory_required, **kwargs)

    asked: list[int] = []
    manager = Recording("cpu")
    with Runtime.build(environ={}, manager=manager).activate():
        vae = load_wan_vae(tiny_file, device="cpu")
        vae.decode(torch.zeros(1, 16, 2, 4, 4))
        manager.unload(vae.patcher)  # so the next decode asks again
        vae.decode(torch.zeros(3, 16, 9, 4, 4))  # three clips, four times the frames
    assert len(asked) == 2 and asked[0] == asked[1] == decode_memory_estimate((1, 16, 2, 4, 4), tiny_config()) > 0


def test_plugin_declares_the_format_and_the_tiny_model(hearth_plugins, tiny_file: Path) -> None:
    from hearth.core.models import detect_with_plugins, read_header

    assert detect_with_plugins(read_header(tiny_file), hearth_plugins).name == "wan21_vae"
    tiny = hearth_plugins.resolve_named("register_tiny_models", "tiny model")
    assert tiny["wan-vae"].kind == "vae" and tiny["wan-vae"].filename == "tiny-wan-vae.safetensors"
