"""The Flux.1 transformer against diffusers' FluxTransformer2DModel, from every file layout Hearth reads (published
bare and under model.diffusion_model., diffusers', ComfyUI's scaled fp8), and the errors of bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_dit import flux_tiny
from hearth_dit.flux_loaders import ScaledLinear, build_flux, load_diffusion_model, read_flux_state
from hearth_dit.flux_model import FluxConfig, FluxTransformer, config_from_shapes
from safetensors.torch import load_file, save_file

from hearth.core.models import CheckpointError

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


def reference(config: FluxConfig, path: Path) -> torch.nn.Module:
    """diffusers' transformer of ``config`` with the weights of a diffusers-layout file (strict: every key)."""
    model = diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=config.in_channels * 4, num_layers=config.depth,
        num_single_layers=config.depth_single_blocks, attention_head_dim=config.head_dim,
        num_attention_heads=config.num_heads, joint_attention_dim=config.context_in_dim,
        pooled_projection_dim=config.vec_in_dim, guidance_embeds=config.guidance_embed,
        axes_dims_rope=config.axes_dim).eval()
    model.load_state_dict(load_file(str(path)), strict=True)
    return model


def diffusers_forward(model, x, t, context, pooled, guidance) -> torch.Tensor:
    """diffusers' call as its Flux pipeline makes it: 2x2-packed latents, (0, row, column) ids, zero text ids."""
    b, c, h, w = x.shape
    packed = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, h * w // 4, c * 4)
    ids = torch.zeros(h // 2, w // 2, 3)
    ids[..., 1] = torch.arange(h // 2)[:, None]
    ids[..., 2] = torch.arange(w // 2)[None, :]
    with torch.no_grad():
        out = model(hidden_states=packed, encoder_hidden_states=context, pooled_projections=pooled, timestep=t,
                    img_ids=ids.reshape(-1, 3), txt_ids=torch.zeros(context.shape[1], 3), guidance=guidance,
                    return_dict=False)[0]
    return out.reshape(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def inputs(seed: int = 3, batch: int = 2, height: int = 8, width: int = 6):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 16, height, width, generator=g), torch.tensor([0.8, 0.25])[:batch],
            torch.randn(batch, 5, 32, generator=g), torch.randn(batch, 32, generator=g),
            torch.tensor([3.5, 1.5])[:batch])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("flux")
    paths = {name: folder / f"{name}.safetensors" for name in ("bare", "prefixed", "diffusers", "fp8", "schnell",
                                                                "schnell-diffusers")}
    flux_tiny.write_tiny_flux(paths["bare"])
    flux_tiny.write_tiny_flux(paths["prefixed"], prefix="model.diffusion_model.")
    flux_tiny.write_tiny_flux_diffusers(paths["diffusers"])
    flux_tiny.write_tiny_flux_scaled_fp8(paths["fp8"])
    flux_tiny.write_tiny_flux_schnell(paths["schnell"])
    flux_tiny.write_tiny_flux_diffusers(paths["schnell-diffusers"], config=flux_tiny.TINY_FLUX_SCHNELL)
    return paths


def ours(path: Path) -> FluxTransformer:
    module = build_flux(*read_flux_state(path), path)
    module.compute_dtype = torch.float32
    return module


@pytest.fixture(scope="module")
def dev_reference(files) -> torch.nn.Module:
    return reference(flux_tiny.TINY_FLUX, files["diffusers"])


@pytest.mark.parametrize("layout", ["bare", "prefixed", "diffusers"])
def test_dev_transformer_equals_diffusers_from_every_layout(files, dev_reference, layout):
    model = dev_reference
    x, t, context, pooled, guidance = inputs()
    with torch.no_grad():
        got = ours(files[layout])(x, t, context, pooled, guidance)
    expected = diffusers_forward(model, x, t, context, pooled, guidance)
    assert expected.abs().max() > 0.5  # a real signal, not zeros on both sides
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    # Guidance is an input of dev: another value gives another velocity.
    with torch.no_grad():
        other = ours(files[layout])(x, t, context, pooled, guidance + 2.0)
    assert (other - got).abs().max() > 1e-3


def test_schnell_has_no_guidance_and_equals_diffusers(files):
    config, _ = read_flux_state(files["schnell"])
    assert not config.guidance_embed and flux_tiny.TINY_FLUX.guidance_embed
    model = reference(config, files["schnell-diffusers"])
    x, t, context, pooled, _ = inputs(seed=4)
    module = ours(files["schnell"])
    with torch.no_grad():
        got = module(x, t, context, pooled, None)
        ignored = module(x, t, context, pooled, torch.tensor([9.0, 9.0]))
    torch.testing.assert_close(got, diffusers_forward(model, x, t, context, pooled, None), rtol=0, atol=1e-4)
    assert torch.equal(got, ignored)


def test_odd_latent_sizes_are_padded_and_cut_back(files):
    x, t, context, pooled, guidance = inputs(batch=1, height=7, width=5)
    with torch.no_grad():
        out = ours(files["bare"])(x, t, context, pooled, guidance)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_config_is_read_from_the_keys():
    shapes = {k: tuple(v.shape) for k, v in flux_tiny.tiny_state().items()}
    assert config_from_shapes(shapes, {"hearth.flux.config": '{"axes_dim": [4, 6, 6]}'}) == flux_tiny.TINY_FLUX
    full = FluxConfig()  # a published head of 128 splits 16 + 56 + 56 without metadata
    with torch.device("meta"):
        full_shapes = {k: tuple(v.shape) for k, v in FluxTransformer(full).state_dict().items()}
    assert config_from_shapes(full_shapes) == full


def test_scaled_fp8_stays_fp8_and_equals_its_dequantized_weights(files):
    state = load_file(str(files["fp8"]))
    module = ours(files["fp8"])
    qkv = module.double_blocks[0].img_attn.qkv
    assert isinstance(qkv, ScaledLinear) and qkv.weight.dtype == torch.float8_e4m3fn  # dequantized on the fly
    dequantized = {k: (v.float() * state[k[:-6] + "scale_weight"]) if k[:-6] + "scale_weight" in state else v.float()
                   for k, v in state.items()
                   if k != "scaled_fp8" and not k.endswith((".scale_weight", ".scale_input"))}
    plain = FluxTransformer(flux_tiny.TINY_FLUX).eval()
    plain.load_state_dict(dequantized)
    x, t, context, pooled, guidance = inputs(seed=5)
    with torch.no_grad():
        got, expected = module(x, t, context, pooled, guidance), plain(x, t, context, pooled, guidance)
        unscaled = {k: v for k, v in dequantized.items()}
        unscaled["double_blocks.0.img_attn.qkv.weight"] = state["double_blocks.0.img_attn.qkv.weight"].float()
        plain.load_state_dict(unscaled)
        wrong = plain(x, t, context, pooled, guidance)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert (wrong - got).abs().max() > 1e-2  # the scale matters: ignoring one would show
    # And the fp8 file is close to the full-precision model it was quantized from.
    with torch.no_grad():
        full = ours(files["bare"])(x, t, context, pooled, guidance)
    assert (full - got).abs().max() < 0.1 * full.abs().max()


def test_weight_dtype_fp8_stores_the_matrices_in_fp8(files):
    model = load_diffusion_model(files["bare"], "fp8_e4m3fn", device="cpu")
    assert model.module.double_blocks[0].img_mlp[0].weight.dtype == torch.float8_e4m3fn
    assert model.module.double_blocks[0].img_attn.norm.query_norm.scale.dtype == torch.float32
    with pytest.raises(ValueError, match="weight_dtype 'int3'"):
        load_diffusion_model(files["bare"], "int3")


def _edit(source: Path, target: Path, edit) -> Path:
    state = load_file(str(source))
    edit(state)
    save_file(state, str(target), metadata={"hearth.flux.config": '{"axes_dim": [4, 6, 6]}'})
    return target


def test_a_missing_key_names_the_key_and_the_file(files, tmp_path):
    path = _edit(files["bare"], tmp_path / "missing.safetensors",
                 lambda s: s.pop("single_blocks.1.linear2.weight"))
    with pytest.raises(CheckpointError, match=r"missing\.safetensors.*single_blocks\.1\.linear2\.weight"):
        load_diffusion_model(path, device="cpu")


def test_a_wrong_shape_names_the_weight_and_the_file(files, tmp_path):
    path = _edit(files["bare"], tmp_path / "wrong.safetensors",
                 lambda s: s.update({"double_blocks.1.txt_mlp.2.weight": torch.zeros(32, 100)}))
    with pytest.raises(CheckpointError, match=r"wrong\.safetensors.*double_blocks\.1\.txt_mlp\.2\.weight"):
        load_diffusion_model(path, device="cpu")


@pytest.mark.parametrize("keep", [0.5, 0.01])  # cut in the tensors, cut in the header
def test_a_truncated_file_names_the_file_and_what_to_do(files, tmp_path, keep):
    path = tmp_path / "truncated.safetensors"
    data = files["bare"].read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"truncated\.safetensors: truncated.*fetch it again"):
        load_diffusion_model(path, device="cpu")


def test_an_incomplete_diffusers_file_names_the_missing_key(files, tmp_path):
    path = _edit(files["diffusers"], tmp_path / "half.safetensors",
                 lambda s: s.pop("single_transformer_blocks.0.proj_mlp.weight"))
    with pytest.raises(ValueError, match=r"half\.safetensors.*single_transformer_blocks\.0\.proj_mlp\.weight"):
        load_diffusion_model(path, device="cpu")


def test_another_file_is_not_taken_for_flux(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"img_in.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(ValueError, match=r"other\.safetensors: not a Flux\.1 transformer"):
        load_diffusion_model(path, device="cpu")


def test_scaled_linear_never_scales_its_stored_weight_in_place():
    """A scaled weight already in the activations' dtype must not be multiplied in place (the cast is a no-op)."""
    layer = ScaledLinear(4, 3)
    layer.register_buffer("scale_weight", torch.tensor([2.0]))
    stored = layer.weight.detach().clone()
    x = torch.randn(2, 4)
    first, second = layer(x), layer(x)
    assert torch.equal(first, second) and torch.equal(layer.weight, stored)
    torch.testing.assert_close(first, x @ (2 * stored).T + layer.bias)


def test_a_fill_model_is_refused_with_its_name(tmp_path):
    """Flux.1 Fill takes 96 input channels (latent, masked image, mask): named, not run wrongly."""
    from dataclasses import replace

    path = tmp_path / "flux1-fill-dev.safetensors"
    flux_tiny.write_tiny_flux(path, config=replace(flux_tiny.TINY_FLUX, in_channels=96))
    with pytest.raises(ValueError, match=r"flux1-fill-dev\.safetensors: .*96 input channels.*Fill"):
        load_diffusion_model(path, device="cpu")


def test_kontext_reference_latents_equal_diffusers_kontext_call(files, dev_reference):
    """One reference image, ComfyUI's default "offset" placement: its patches join the latent's with ids (1, row,
    column), as diffusers' FluxKontextPipeline calls the transformer; only the latent's tokens come out."""
    model = dev_reference
    x, t, context, pooled, guidance = inputs(seed=6, batch=1)
    ref = torch.randn(1, 16, 6, 10, generator=torch.Generator().manual_seed(8))
    module = ours(files["bare"])
    with torch.no_grad():
        got = module(x, t, context, pooled, guidance, [ref])
        plain = module(x, t, context, pooled, guidance)

    def packed(latent):
        b, c, h, w = latent.shape
        tokens = latent.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, h * w // 4, c * 4)
        ids = torch.zeros(h // 2, w // 2, 3)
        ids[..., 1] = torch.arange(h // 2)[:, None]
        ids[..., 2] = torch.arange(w // 2)[None, :]
        return tokens, ids.reshape(-1, 3)

    (img, img_ids), (kontext, kontext_ids) = packed(x), packed(ref)
    kontext_ids[:, 0] = 1
    with torch.no_grad():
        out = model(hidden_states=torch.cat([img, kontext], 1), encoder_hidden_states=context,
                    pooled_projections=pooled, timestep=t, img_ids=torch.cat([img_ids, kontext_ids]),
                    txt_ids=torch.zeros(context.shape[1], 3), guidance=guidance, return_dict=False)[0]
    expected = out[:, : img.shape[1]].reshape(1, 4, 3, 16, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(1, 16, 8, 6)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    assert (got - plain).abs().max() > 1e-3  # the reference is attended to


def test_reference_places_follow_comfyui_methods():
    from hearth_dit.flux_model import reference_places

    sizes = [(10, 8), (6, 14)]  # a tall reference, then a wide one (latent pixels)
    assert reference_places(sizes, 4, 3, "offset") == [(1, 0, 0), (1, 10, 0)]
    assert reference_places(sizes, 4, 3, "index") == [(1, 0, 0), (2, 0, 0)]
    assert reference_places(sizes, 4, 3, "uxo") == [(0, 8, 6), (0, 18, 14)]
    with pytest.raises(ValueError, match="index_timestep_zero"):
        reference_places(sizes, 4, 3, "index_timestep_zero")


def test_a_bf16_file_stays_bf16_and_computes_close_to_float32(files, tmp_path):
    path = _edit(files["bare"], tmp_path / "flux-bf16.safetensors",
                 lambda s: s.update({k: v.to(torch.bfloat16) for k, v in s.items()}))
    model = load_diffusion_model(path, device="cpu")
    assert model.module.double_blocks[0].img_attn.qkv.weight.dtype == torch.bfloat16  # not widened at load
    x, t, context, pooled, guidance = inputs(seed=9)
    with torch.no_grad():
        got = model.module(x, t, context, pooled, guidance).float()
        full = ours(files["bare"])(x, t, context, pooled, guidance)
    assert (got - full).abs().max() < 0.05 * full.abs().max()
