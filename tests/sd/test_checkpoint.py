"""make-tiny files load through the same code as real checkpoints; detection, configs, prediction, CLI."""

from __future__ import annotations

import hashlib
import importlib.metadata

import pytest
import torch
from click.testing import CliRunner
from hearth_sd import plugin
from hearth_sd.checkpoint import detect_family, load_checkpoint, load_vae, read_state_dict
from hearth_sd.families import FAMILIES
from hearth_sd.ops import compute_dtype_of
from hearth_sd.sdxl_conditioning import sdxl_adm, sdxl_refiner_adm
from hearth_sd.tiny import make_tiny_checkpoint
from safetensors.torch import load_file, save_file

from hearth.core.models import CheckpointError, UnknownModelError


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return {name: make_tiny_checkpoint(name, folder / f"{name}.safetensors") for name in FAMILIES}


@pytest.fixture(scope="module")
def loaded(tiny_files):
    """Each tiny checkpoint loaded once, for the tests that only read from it."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_checkpoint(tiny_files[name])
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(FAMILIES))
def test_tiny_checkpoint_loads_as_its_family(tiny_files, loaded, name):
    path = tiny_files[name]
    assert path.stat().st_size < 20e6
    family = FAMILIES[name]
    ckpt = loaded(name)
    assert ckpt.family is family
    assert ckpt.model.unet.config == family.unet_tiny
    assert ckpt.vae.model.config == family.vae_tiny
    for spec in family.text_encoders:
        assert ckpt.clip.encoders[spec.name].config == spec.tiny
    assert ckpt.model.sampling.prediction == family.prediction  # sd2: v, from the file's ModelSpec metadata

    # Every tensor in the file is in a module, unchanged: still float16 (memory-mapped, not copied), computing in
    # float32 on the CPU through casting layers.
    tensors = load_file(str(path))
    modules = {"model.diffusion_model.": ckpt.model.unet, "first_stage_model.": ckpt.vae.model}
    modules.update({spec.prefix: ckpt.clip.encoders[spec.name] for spec in family.text_encoders})
    loaded = {p + k: v for p, m in modules.items() for k, v in m.state_dict().items()}
    assert loaded.keys() == tensors.keys()
    assert all(loaded[k].dtype == torch.float16 and torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert all(compute_dtype_of(m) == torch.float32 for m in modules.values())


@pytest.mark.parametrize("name", list(FAMILIES))
def test_tiny_checkpoint_runs_end_to_end(loaded, name):
    ckpt = loaded(name)
    cond, pooled = ckpt.clip.encode("a (tiny:1.2) test, " * 20)
    assert cond.shape == (1, 154, ckpt.model.unet.config.context_dim)
    y = None
    if ckpt.family.adm == "sdxl":
        y = sdxl_adm(pooled, 64, 48)
    elif ckpt.family.adm == "sdxl_refiner":
        y = sdxl_refiner_adm(pooled, 64, 48)
    image = torch.rand(1, 48, 64, 3)
    latent = ckpt.vae.encode(image)
    assert latent.shape == (1, 4, 6, 8)  # the tiny VAE downscales by 8, as the real one does
    x = ckpt.model.process_latent_in(latent)
    denoised = ckpt.model(x, torch.tensor(3.0), cond, y)
    decoded = ckpt.vae.decode(ckpt.model.process_latent_out(denoised))
    assert decoded.shape == (1, 48, 64, 3) and torch.isfinite(decoded).all()
    assert 0 <= decoded.min() and decoded.max() <= 1


def test_same_seed_same_bytes(tmp_path):
    a = make_tiny_checkpoint("sd1", tmp_path / "a.safetensors", seed=3)
    b = make_tiny_checkpoint("sd1", tmp_path / "b.safetensors", seed=3)
    c = make_tiny_checkpoint("sd1", tmp_path / "c.safetensors", seed=4)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]


def test_prediction_option_wins_over_metadata(tiny_files):
    assert load_checkpoint(tiny_files["sd2"], prediction="eps").model.sampling.prediction == "eps"
    with pytest.raises(ValueError, match="prediction"):
        load_checkpoint(tiny_files["sd2"], prediction="x0")


def test_formats_detect_each_family_and_name_the_closest(tiny_files):
    formats = plugin.register_model_formats()
    for name, path in tiny_files.items():
        shapes = {k: tuple(v.shape) for k, v in load_file(str(path)).items()}
        best = max(formats, key=lambda f: f.score(shapes))
        assert best.name == name and best.score(shapes) == 1.0

def test_unknown_checkpoint_names_the_file_and_closest_families(tmp_path):
    odd = tmp_path / "odd.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1),
               "first_stage_model.decoder.conv_in.weight": torch.zeros(1)}, str(odd))
    with pytest.raises(UnknownModelError, match=r"odd\.safetensors.*closest known families: sd1 \(67%"):
        load_checkpoint(odd)
    with pytest.raises(UnknownModelError, match="not a checkpoint"):
        detect_family({"encoder.conv_in.weight": (1,), "decoder.conv_in.weight": (1,), "quant_conv.weight": (1,)})


def test_entry_point_is_declared():
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="hearth")}
    assert names.get("sd") == "hearth_sd.plugin"


def test_wrong_weights_are_named(tiny_files, tmp_path):
    tensors, metadata = read_state_dict(tiny_files["sd1"])
    del tensors["model.diffusion_model.out.0.bias"]
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), metadata=metadata)
    with pytest.raises(CheckpointError, match=r"broken\.safetensors \(UNet\).*missing.*'out\.0\.bias'"):
        load_checkpoint(broken)


def test_standalone_vae_file(tiny_files, loaded, tmp_path):
    tensors, _ = read_state_dict(tiny_files["sdxl"])
    vae_only = {k.removeprefix("first_stage_model."): v for k, v in tensors.items() if k.startswith("first_stage")}
    path = tmp_path / "vae.safetensors"
    save_file(vae_only, str(path))
    vae = load_vae(path)
    same = loaded("sdxl").vae
    image = torch.rand(1, 16, 16, 3)
    assert torch.equal(vae.encode(image), same.encode(image))


def test_cli_make_tiny(tmp_path):
    from hearth.cli.main import cli

    def make_tiny(*args: str):
        return CliRunner().invoke(cli, ["models", "make-tiny", *args])

    out = tmp_path / "m.safetensors"
    result = make_tiny("sdxl", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and load_checkpoint(out).family.name == "sdxl"
    bad = make_tiny("sd1", "--out", str(tmp_path / "m.ckpt"))
    assert bad.exit_code == 2 and ".safetensors" in bad.output
    every = make_tiny("all", "--models-dir", str(tmp_path / "models"))
    assert every.exit_code == 0, every.output
    for name in ["sd1", "sd2", "sdxl", "sdxl-refiner"]:
        assert (tmp_path / "models" / "checkpoints" / f"tiny-{name}.safetensors").is_file()
    assert make_tiny("all", "--out", str(out)).exit_code == 2


def test_hook_register_model_formats(hearth_plugins, tiny_files):
    """Through the real plugin manager: core's detection finds every tiny file's family from its header."""
    from hearth.core.models import detect_with_plugins

    assert {"sd1", "sd2", "sdxl", "sdxl_refiner", "sd_vae"} <= {f.name for f in hearth_plugins.model_formats()}
    for name, path in tiny_files.items():
        assert detect_with_plugins(path, hearth_plugins).extra["family"] == name


def test_hook_resolve_model_format(hearth_plugins, tiny_files, tmp_path):
    """SD2 files that say their prediction type in ModelSpec metadata get it; others keep the default (v)."""
    from hearth.core.models import detect_with_plugins

    tensors, metadata = read_state_dict(tiny_files["sd2"])
    eps = tmp_path / "sd2-base.safetensors"
    save_file(tensors, str(eps), metadata={**metadata, "modelspec.prediction_type": "epsilon"})
    assert detect_with_plugins(eps, hearth_plugins).extra["prediction"] == "eps"
    assert load_checkpoint(eps).model.sampling.prediction == "eps"
    plain = tmp_path / "sd2-unknown.safetensors"
    save_file(tensors, str(plain))
    assert detect_with_plugins(plain, hearth_plugins).extra["prediction"] == "v"
    assert detect_with_plugins(tiny_files["sd1"], hearth_plugins).name == "sd1"  # other families untouched


def test_export_variants_load(tiny_files, loaded, tmp_path):
    """Layouts that other tools write: linear VAE attention, a Linear-style text projection, VAE loss keys,
    position_ids buffers. Each must give the same model as the plain file."""
    tensors, metadata = read_state_dict(tiny_files["sdxl"])
    variant = dict(tensors)
    for key in [k for k in variant if ".mid.attn_1." in k and k.endswith("weight") and variant[k].ndim == 4]:
        variant[key] = variant[key][:, :, 0, 0].contiguous()
    proj = "conditioner.embedders.1.model.text_projection"
    variant[proj + ".weight"] = variant.pop(proj).t().contiguous()
    variant["first_stage_model.loss.logvar"] = torch.zeros(())
    variant["conditioner.embedders.0.transformer.text_model.embeddings.position_ids"] = torch.arange(77)[None]
    path = tmp_path / "variant.safetensors"
    save_file(variant, str(path), metadata=metadata)

    plain, other = loaded("sdxl"), load_checkpoint(path)
    image = torch.rand(1, 16, 16, 3)
    assert torch.equal(plain.vae.encode(image), other.vae.encode(image))
    assert all(torch.equal(a, b) for a, b in zip(plain.clip.encode("a fox"), other.clip.encode("a fox"), strict=True))


def test_plugin_entry_point_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, hearth_sd.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("name", ["sd1", "sdxl"])
def test_casting_layers_equal_converted_weights(tiny_files, loaded, name):
    """float16 weights cast per layer give exactly what the same weights converted to float32 up front give."""
    kept = loaded(name)
    converted = load_checkpoint(tiny_files[name])
    for module in [converted.model.unet, converted.vae.model, *converted.clip.encoders.values()]:
        module.float()
        module.compute_dtype = None
        for layer in module.modules():  # back to plain layers
            for base in (torch.nn.Linear, torch.nn.Conv2d, torch.nn.GroupNorm, torch.nn.LayerNorm):
                if isinstance(layer, base):
                    layer.__class__ = base
    assert next(converted.model.unet.parameters()).dtype == torch.float32
    cond, pooled = kept.clip.encode("a (fox:1.3)")
    assert all(torch.equal(a, b) for a, b in zip((cond, pooled), converted.clip.encode("a (fox:1.3)"), strict=True))
    y = sdxl_adm(pooled, 64, 64) if name == "sdxl" else None
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kept.model(x, torch.tensor(2.0), cond, y), converted.model(x, torch.tensor(2.0), cond, y))
    image = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(kept.vae.decode(kept.vae.encode(image)), converted.vae.decode(converted.vae.encode(image)))


def test_tiling_blends_back_to_the_untiled_result():
    """With a position-wise fn (nearest upscale, average pooling) every tile agrees where tiles overlap, so the
    blend must give exactly the untiled result: this checks the windows, offsets and weights."""
    from hearth_sd.model import tiled

    x = torch.randn(2, 4, 37, 50, generator=torch.Generator().manual_seed(0))
    up = lambda t: t.repeat_interleave(8, -1).repeat_interleave(8, -2)  # noqa: E731
    assert torch.allclose(tiled(up, x, tile=16, overlap=6, up=8, down=1), up(x), atol=1e-6)
    pixels = torch.randn(1, 3, 200, 136, generator=torch.Generator().manual_seed(1))
    pool = lambda t: torch.nn.functional.avg_pool2d(t, 8)  # noqa: E731
    assert torch.allclose(tiled(pool, pixels, tile=64, overlap=16, up=1, down=8), pool(pixels), atol=1e-6)
    with pytest.raises(ValueError, match="overlap"):
        tiled(up, x, tile=8, overlap=8, up=8, down=1)


def test_vae_tiled_matches_whole_when_one_tile_covers_it(loaded):
    vae = loaded("sd1").vae
    latent = torch.randn(1, 4, 6, 10, generator=torch.Generator().manual_seed(2))
    assert torch.equal(vae.decode_tiled(latent, tile=16, overlap=4), vae.decode(latent))
    image = torch.rand(1, 40, 56, 3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(vae.encode_tiled(image, tile=64, overlap=16), vae.encode(image))
    f = vae.downscale  # 2 for the tiny VAE's two levels
    assert vae.decode_tiled(latent, tile=4, overlap=2).shape == (1, 6 * f, 10 * f, 3)
    assert vae.encode_tiled(image, tile=16, overlap=8).shape == (1, 4, 40 // f, 56 // f)


def test_memory_estimate_grows_with_the_batch_and_area(loaded):
    model = loaded("sdxl").model
    small = model.memory_required((1, 4, 32, 32), torch.float16)
    assert 0 < small < model.memory_required((2, 4, 32, 32), torch.float16)
    assert model.memory_required((1, 4, 64, 64), torch.float16) > 4 * small  # attention grows with area squared
    assert model.memory_required((1, 4, 32, 32), torch.float32) == 2 * small
    assert model.memory_required(None) > 0


def test_make_tiny_models_fills_the_checkpoints_folder(tmp_path):
    from hearth_sd.tiny import make_tiny_models

    paths = make_tiny_models(tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "tiny-sd1.safetensors", "tiny-sd2.safetensors", "tiny-sdxl-refiner.safetensors", "tiny-sdxl.safetensors"
    ]
    assert paths["sdxl_refiner"].name == "tiny-sdxl-refiner.safetensors"
