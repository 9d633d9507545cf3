"""Z-Image's DiT against diffusers' ZImageTransformer2DModel with the same weights, and its file formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hearth_dit import zimage_loaders, zimage_model
from hearth_dit.zimage_model import CONFIG_METADATA_KEY, ZImageModel, config_from_shapes, full_size_config
from hearth_dit.zimage_tiny import TINY_DIT, write_tiny_zimage
from safetensors.torch import load_file, save_file

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zimage") / "z_image_turbo_bf16.safetensors"
    write_tiny_zimage(path, seed=3)
    return path


def to_diffusers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's Z-Image keys -> diffusers' (written here apart from Hearth's converter, which goes the other way)."""
    out = {}
    for key, value in state.items():
        key = key.replace("x_embedder.", "all_x_embedder.2-1.", 1) if key.startswith("x_embedder.") else key
        key = key.replace("final_layer.", "all_final_layer.2-1.", 1) if key.startswith("final_layer.") else key
        if key.endswith("attention.qkv.weight"):
            base = key[: -len("qkv.weight")]
            for name, part in zip(("to_q", "to_k", "to_v"), value.chunk(3), strict=True):
                out[f"{base}{name}.weight"] = part
            continue
        key = key.replace("attention.out.", "attention.to_out.0.").replace("attention.q_norm.", "attention.norm_q.")
        out[key.replace("attention.k_norm.", "attention.norm_k.")] = value
    return out


def reference_model(state: dict[str, torch.Tensor]):
    cfg = TINY_DIT
    model = diffusers.ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=cfg.dim, n_layers=cfg.n_layers,
        n_refiner_layers=cfg.n_refiner_layers, n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads,
        cap_feat_dim=cfg.cap_feat_dim, axes_dims=list(cfg.axes_dims), axes_lens=[512, 64, 64]).eval()
    model.load_state_dict(to_diffusers(state), strict=True)
    return model


def reference_forward(model, x: torch.Tensor, t: torch.Tensor, cap: torch.Tensor) -> torch.Tensor:
    out = model(list(x.unsqueeze(2)), t, list(cap), return_dict=False)[0]
    return torch.stack(out).squeeze(2)


def test_dit_equals_diffusers_with_the_same_weights(tiny_file: Path) -> None:
    """Padding of caption and image to 32 tokens, the pad tokens, rotary ids, refiners and modulation: a batch of
    two at different times, a caption of 7 tokens and a 10x12 latent (30 patches) leave nothing unpadded."""
    model = zimage_loaders.load_diffusion_model(tiny_file, device="cpu")
    assert model.module.config == TINY_DIT and model.compute_dtype() == torch.float32
    reference = reference_model(load_file(str(tiny_file)))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 10, 12, generator=generator)
    cap = torch.randn(2, 7, TINY_DIT.cap_feat_dim, generator=generator)
    t = torch.tensor([0.25, 0.8])
    with torch.no_grad():
        ours = model.module(x, t, cap)
        theirs = reference_forward(reference, x, t, cap)
    assert ours.shape == x.shape and theirs.abs().mean() > 0.1
    assert (ours - theirs).abs().max() <= 1e-4


def test_odd_latent_sizes_are_padded_and_cut_back(tiny_file: Path) -> None:
    model = zimage_loaders.load_diffusion_model(tiny_file, device="cpu")
    with torch.no_grad():
        out = model.module(torch.randn(1, 16, 5, 7), torch.tensor([0.5]), torch.randn(1, 3, TINY_DIT.cap_feat_dim))
    assert out.shape == (1, 16, 5, 7) and torch.isfinite(out).all()


def test_diffusers_and_checkpoint_layouts_load_the_same_model(tiny_file: Path, tmp_path: Path) -> None:
    state = load_file(str(tiny_file))
    metadata = {CONFIG_METADATA_KEY: json.dumps({"axes_dims": list(TINY_DIT.axes_dims)})}
    converted = tmp_path / "diffusers.safetensors"
    save_file(to_diffusers(state), str(converted), metadata=metadata)
    nested = tmp_path / "checkpoint.safetensors"
    save_file({f"model.diffusion_model.{k}": v for k, v in state.items()}, str(nested), metadata=metadata)
    x, t, cap = torch.randn(1, 16, 4, 4), torch.tensor([0.3]), torch.randn(1, 5, TINY_DIT.cap_feat_dim)
    with torch.no_grad():
        expected = zimage_loaders.load_diffusion_model(tiny_file, device="cpu").module(x, t, cap)
        for path in (converted, nested):
            found = zimage_loaders.load_diffusion_model(path, device="cpu").module(x, t, cap)
            assert (found - expected).abs().max() <= 1e-5  # the same weights; matmul kernels vary by layout


def test_formats_detect_each_layout() -> None:
    names = {f.name: f for f in zimage_model.zimage_formats()}
    assert set(names) == {"z-image", "z-image-checkpoint", "z-image-diffusers"}
    assert "model.diffusion_model.layers.0.attention.qkv.weight" in names["z-image-checkpoint"].sentinels


def test_full_size_config_is_z_image_turbo() -> None:
    cfg = full_size_config()
    assert (cfg.dim, cfg.n_layers, cfg.n_heads, cfg.head_dim, cfg.ffn_dim, cfg.cap_feat_dim) == \
        (3840, 30, 30, 128, 10240, 2560)
    with torch.device("meta"):
        params = sum(p.numel() for p in ZImageModel(cfg).parameters())
    assert 6.1e9 < params < 6.2e9  # Z-Image Turbo's 6.15B


def test_bad_files_say_what_is_wrong(tmp_path: Path, tiny_file: Path) -> None:
    other = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4)}, str(other))
    with pytest.raises(ValueError, match="sd15.safetensors: not a Z-Image diffusion model"):
        zimage_loaders.load_diffusion_model(other, device="cpu")
    truncated = tmp_path / "truncated.safetensors"
    save_file({k: v for k, v in load_file(str(tiny_file)).items() if "feed_forward" not in k}, str(truncated))
    with pytest.raises(ValueError, match="not a Z-Image diffusion model.*feed_forward"):
        zimage_loaders.load_diffusion_model(truncated, device="cpu")
    shapes = {k: tuple(v.shape) for k, v in load_file(str(tiny_file)).items()}
    with pytest.raises(ValueError, match="heads of 16 channels.*rotary"):
        config_from_shapes(shapes, {}, "odd.safetensors")  # no metadata: the rotary split is unknown
    with pytest.raises(ValueError, match="weight_dtype"):
        zimage_loaders.load_diffusion_model(tiny_file, "int3")


def test_activation_estimate_grows_with_the_image() -> None:
    with torch.device("meta"):
        model = ZImageModel(full_size_config())
    small = model.activation_bytes((1, 16, 64, 64), torch.bfloat16)
    large = model.activation_bytes((1, 16, 128, 128), torch.bfloat16)
    assert 0 < small < large
    # 1024x1024 in bf16: 4096 image + 512 caption tokens, each about 10 x 3840 x 2 bytes.
    assert 0.3e9 < large < 1.0e9


def test_fp8_weight_dtype_stores_matrices_in_fp8_and_keeps_norms(tiny_file: Path) -> None:
    """UNETLoader's weight_dtype fp8_e4m3fn: matrices in float8 (half the bytes of bf16), norms and pad tokens
    as stored; the layers cast as they run, so the output stays close to the full-precision model's."""
    full = zimage_loaders.load_diffusion_model(tiny_file, device="cpu").module
    fp8 = zimage_loaders.load_diffusion_model(tiny_file, "fp8_e4m3fn", device="cpu").module
    block = fp8.layers[0]
    assert block.attention.qkv.weight.dtype == torch.float8_e4m3fn and block.feed_forward.w2.weight.dtype == torch.float8_e4m3fn
    assert block.attention.q_norm.weight.dtype == torch.float32 and fp8.cap_pad_token.dtype == torch.float32
    x, t, cap = torch.randn(1, 16, 8, 8), torch.tensor([0.5]), torch.randn(1, 5, TINY_DIT.cap_feat_dim)
    with torch.no_grad():
        want, got = full(x, t, cap), fp8(x, t, cap)
    assert 0 < (got - want).abs().mean() < 0.1 * want.abs().mean()
