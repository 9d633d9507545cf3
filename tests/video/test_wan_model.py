"""The Wan 2.1 diffusion transformer matches diffusers' WanTransformer3DModel given the same published-layout weights."""

from __future__ import annotations

import pytest
import torch
from hearth_video.wan_model import WanConfig, WanModel, config_from_shapes, wan_formats

from hearth.core.models import detect


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


TINY = WanConfig(dim=48, ffn_dim=96, num_heads=2, num_layers=2, in_dim=16, out_dim=16, text_dim=32, freq_dim=32)


def random_state(config: WanConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = WanModel(config)
    return {k: torch.randn_like(v) * (0.15 if v.ndim > 1 else 0.1) for k, v in model.state_dict().items()}


def diffusers_model(config: WanConfig, state: dict[str, torch.Tensor]):
    diffusers = pytest.importorskip("diffusers")
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    reference = diffusers.WanTransformer3DModel(
        patch_size=config.patch_size, num_attention_heads=config.num_heads, attention_head_dim=config.head_dim,
        in_channels=config.in_dim, out_channels=config.out_dim, text_dim=config.text_dim, freq_dim=config.freq_dim,
        ffn_dim=config.ffn_dim, num_layers=config.num_layers, cross_attn_norm=config.cross_attn_norm,
        eps=config.eps).eval()
    converted = convert_wan_transformer_to_diffusers({k: v.clone() for k, v in state.items()})
    result = reference.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return reference


def test_published_key_layout_is_what_the_model_reads() -> None:
    keys = set(WanModel(TINY).state_dict())
    for key in ("patch_embedding.weight", "text_embedding.0.weight", "text_embedding.2.weight",
                "time_embedding.0.weight", "time_embedding.2.weight", "time_projection.1.weight",
                "blocks.0.self_attn.q.weight", "blocks.0.self_attn.norm_q.weight", "blocks.0.self_attn.norm_k.weight",
                "blocks.0.cross_attn.o.bias", "blocks.0.norm3.weight", "blocks.0.norm3.bias", "blocks.1.ffn.0.weight",
                "blocks.1.ffn.2.weight", "blocks.1.modulation", "head.head.weight", "head.modulation"):
        assert key in keys, key


@pytest.mark.parametrize("frames,height,width", [(3, 4, 6), (2, 6, 4)])
def test_matches_diffusers_wan_transformer(frames: int, height: int, width: int) -> None:
    state = random_state(TINY)
    ours = WanModel(TINY).eval()
    ours.load_state_dict(state)
    reference = diffusers_model(TINY, state)
    torch.manual_seed(1)
    x = torch.randn(2, 16, frames, height, width)
    t = torch.tensor([999.0, 321.5])
    context = torch.randn(2, 7, TINY.text_dim)
    with torch.no_grad():
        expected = reference(x, t, context, return_dict=False)[0]
        got = ours(x, t, context)
    assert got.shape == (2, 16, frames, height, width)
    assert expected.abs().max() > 0.1  # a real signal, not two zero outputs agreeing
    assert (got - expected).abs().max().item() <= 1e-4


def test_config_and_format_come_from_the_keys() -> None:
    state = random_state(TINY)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    config = config_from_shapes(shapes, num_heads=2)
    assert config == TINY
    assert config_from_shapes(shapes).num_heads == 1  # dim 48 // 128 rounds up to one head without metadata
    assert detect(shapes, wan_formats()).name == "wan21-t2v"
    prefixed = {"model.diffusion_model." + k: v for k, v in shapes.items()}
    assert detect(prefixed, wan_formats()).name == "wan21-t2v-checkpoint"
    with pytest.raises(ValueError, match="image-to-video"):
        config_from_shapes({**shapes, "img_emb.proj.0.weight": (4,)})


def test_odd_sizes_are_padded_and_cropped_back() -> None:
    state = random_state(TINY)
    model = WanModel(TINY).eval()
    model.load_state_dict(state)
    x = torch.randn(1, 16, 2, 5, 7)
    with torch.no_grad():
        out = model(x, torch.tensor([500.0]), torch.randn(1, 3, TINY.text_dim))
    assert out.shape == x.shape and torch.isfinite(out).all()


def _file(tmp_path, state, name, metadata=None):
    from safetensors.torch import save_file

    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=metadata)
    return path


def _reference_output(state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple]:
    model = WanModel(TINY).eval()
    model.load_state_dict({k: v.float() for k, v in state.items()})
    torch.manual_seed(5)
    args = (torch.randn(1, 16, 2, 4, 4), torch.tensor([700.0]), torch.randn(1, 6, TINY.text_dim))
    with torch.no_grad():
        return model(*args), args


def test_stored_dtypes_and_layouts_load_to_the_same_model(tmp_path) -> None:
    import json

    from hearth_video.wan_loaders import load_diffusion_model
    from hearth_video.wan_model import CONFIG_METADATA_KEY

    meta = {CONFIG_METADATA_KEY: json.dumps({"num_heads": TINY.num_heads})}
    state = random_state(TINY)
    half = {k: v.to(torch.bfloat16) for k, v in state.items()}
    expected, args = _reference_output(half)
    cases = {"bf16.safetensors": half,
             "ckpt.safetensors": {"model.diffusion_model." + k: v for k, v in half.items()}}
    for name, stored in cases.items():
        model = load_diffusion_model(_file(tmp_path, stored, name, meta), device="cpu")
        assert model.module.patch_embedding.weight.dtype == torch.bfloat16  # stored dtype kept, cast per layer
        with torch.no_grad():
            got = model.module(*args)
        assert (got - expected).abs().max() <= 1e-4, name


def test_scaled_fp8_files_are_dequantized_and_fp8_storage_is_close(tmp_path) -> None:
    import json

    from hearth_video.wan_loaders import load_diffusion_model
    from hearth_video.wan_model import CONFIG_METADATA_KEY, dequantize_scaled_fp8

    meta = {CONFIG_METADATA_KEY: json.dumps({"num_heads": TINY.num_heads})}
    state = random_state(TINY)
    expected, args = _reference_output(state)
    scaled = dict(state)
    key = "blocks.0.ffn.0.weight"
    scale = state[key].abs().max() / 400.0
    scaled[key] = (state[key] / scale).to(torch.float8_e4m3fn)
    scaled[key.replace("weight", "scale_weight")] = scale.reshape(1)
    scaled["scaled_fp8"] = torch.zeros(0, dtype=torch.float8_e4m3fn)
    plain = dequantize_scaled_fp8(scaled)
    assert set(plain) == set(state)
    assert torch.allclose(plain[key].float(), state[key], rtol=0.07, atol=1e-3)
    model = load_diffusion_model(_file(tmp_path, scaled, "scaled.safetensors", meta), device="cpu")
    with torch.no_grad():
        assert (model.module(*args) - expected).abs().max() < 0.1 * expected.abs().max()
    fp8 = load_diffusion_model(_file(tmp_path, state, "plain.safetensors", meta), "fp8_e4m3fn", device="cpu")
    assert fp8.module.blocks[0].self_attn.q.weight.dtype == torch.float8_e4m3fn
    assert fp8.module.blocks[0].modulation.dtype == torch.float32
    with torch.no_grad():
        assert (fp8.module(*args) - expected).abs().max() < 0.1 * expected.abs().max()


@pytest.mark.parametrize("dim,ffn,layers,heads", [(1536, 8960, 30, 12), (5120, 13824, 40, 40)])
def test_published_sizes_read_back_from_their_keys(dim: int, ffn: int, layers: int, heads: int) -> None:
    # Wan 2.1 T2V 1.3B and 14B, built on the meta device (no memory): the config comes back from shapes alone.
    published = WanConfig(dim=dim, ffn_dim=ffn, num_heads=heads, num_layers=layers)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in WanModel(published).state_dict().items()}
    assert config_from_shapes(shapes) == published
    assert shapes["blocks.0.modulation"] == (1, 6, dim) and shapes["head.head.weight"] == (64, dim)
    # 81 frames of 832x480 (21 x 60 x 104 latents), a CFG pair in bfloat16: gigabytes, growing with the clip.
    with torch.device("meta"):
        model = WanModel(published)
    full = model.activation_bytes((2, 16, 21, 60, 104), torch.bfloat16)
    assert 1 << 30 < full < 64 << 30
    assert model.activation_bytes((2, 16, 5, 60, 104), torch.bfloat16) < full
