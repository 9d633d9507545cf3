"""The model contract every family shares: ModelValue's patcher surface, one load cache, readiness, generic loaders.

Run on the SD and Wan values as the installed plugins make them, through the core's ``load_model_file`` and loader
nodes, so a family that drifts from the contract (or a loader that stops dispatching) fails here.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from hearth.core.model_folders import write_tiny_models
from hearth.core.models import (
    LoadCache,
    Loaded,
    ModelManager,
    ModelValue,
    NoModelLoaderError,
    PatchedModel,
    load_cache,
    load_model_file,
)
from hearth.core.models.loader_nodes import CheckpointLoaderSimple, CLIPLoader, UNETLoader, VAELoader

TINY = ("sd1", "sd-vae", "clip-l", "wan-dit", "wan-umt5", "wan-vae")


@pytest.fixture
def models(hearth_runtime) -> Path:
    """The SD and Wan tiny models, in the models folder of the test's Runtime."""
    base = hearth_runtime.model_folders.base
    offered = hearth_runtime.plugins.resolve_named("register_tiny_models", "tiny model")
    missing = [name for name in TINY if name not in offered]
    if missing:
        pytest.skip(f"the SD and video plugins are not installed (no tiny {', '.join(missing)})")
    write_tiny_models(base, {name: offered[name] for name in TINY})
    return base


def _file(base: Path, kind: str, name: str) -> Path:
    found = [p for p in (base / kind).rglob(name)] or [p for p in base.rglob(name)]
    assert found, f"{name} not written under {base}"
    return found[0]


def _values(base: Path) -> dict[str, ModelValue]:
    model, clip, vae = load_model_file("checkpoints", _file(base, "checkpoints", "tiny-sd1.safetensors"))
    return {
        "sd MODEL": model, "sd CLIP": clip, "sd VAE": vae,
        "wan MODEL": load_model_file("diffusion_models", _file(base, "diffusion_models", "tiny-wan.safetensors")),
        "wan CLIP": load_model_file("text_encoders", _file(base, "text_encoders", "tiny-umt5.safetensors"),
                                    type="wan", device="cpu"),
        "wan VAE": load_model_file("vae", _file(base, "vae", "tiny-wan-vae.safetensors")),
    }


# -- the ModelPatcher surface ---------------------------------------------------------------------------------


def test_every_value_clones_without_copying_weights_and_keeps_its_own_patches(models):
    for what, value in _values(models).items():
        assert isinstance(value, ModelValue), what
        twin = value.clone()
        assert type(twin) is type(value) and twin.is_clone(value) and value.is_clone(twin), what
        assert twin.load_device == value.load_device and twin.offload_device == value.offload_device, what
        key, weight = next((k, w) for k, w in value.model_state_dict().items() if w.is_floating_point())
        # ComfyUI's "set" patch on the clone: the clone's view of the weight changes, the original's does not.
        assert twin.add_patches({key: ("set", (weight + 1,))}) == [key], what
        # Kept in the compute dtype (float32 on a CPU), whatever the weight is stored in.
        torch.testing.assert_close(twin.get_key_patches(key)[key][0].float(), (weight + 1).float())
        torch.testing.assert_close(value.get_key_patches(key)[key][0], weight, rtol=0, atol=0)
        assert not value.patcher.patches and twin.patcher.patches, what
        assert value.memory_bytes() == twin.memory_bytes() > 0, what


def test_a_patch_for_a_key_the_model_lacks_is_skipped_and_offset_patches_are_refused(models):
    model = _values(models)["wan MODEL"].clone()
    assert model.add_patches({"diffusion_model.no.such.weight": torch.zeros(1)}) == []
    with pytest.raises(ValueError, match="offset keys"):
        model.add_patches({("diffusion_model.head.head.weight", 0, 0): torch.zeros(1)})


@pytest.mark.parametrize("which", ["sd MODEL", "wan MODEL"])
def test_model_options_and_object_patches_belong_to_the_clone(models, which):
    model = _values(models)[which]
    twin = model.clone()

    def cfg(args):
        return args["cond"]

    def attn(n, context, value, extra):
        return n, context, value

    twin.set_model_sampler_cfg_function(cfg, disable_cfg1_optimization=True)
    twin.set_model_sampler_post_cfg_function(cfg)
    twin.set_model_attn1_patch(attn)
    twin.set_model_attn2_replace(attn, "input", 4, 0)
    assert twin.model_options["sampler_cfg_function"] is cfg and twin.model_options["disable_cfg1_optimization"]
    assert twin.model_options["sampler_post_cfg_function"] == [cfg]
    assert twin.model_options["transformer_options"]["patches"]["attn1_patch"] == [attn]
    assert twin.model_options["transformer_options"]["patches_replace"]["attn2"][("input", 4, 0)] is attn
    assert model.model_options == {"transformer_options": {}}  # nothing reached the original
    # A clone of the clone copies its options: adding to its lists does not reach the first clone.
    third = twin.clone()
    third.set_model_sampler_post_cfg_function(attn)
    assert twin.model_options["sampler_post_cfg_function"] == [cfg]

    sampling = object()
    twin.add_object_patch("model_sampling", sampling)
    assert twin.get_model_object("model_sampling") is sampling and twin.sampling is sampling
    assert model.get_model_object("model_sampling") is not sampling
    with pytest.raises(ValueError, match="'not_a_part'"):
        twin.add_object_patch("not_a_part", sampling)


# -- readiness through the manager's public methods -------------------------------------------------------------


def test_is_ready_means_loaded_with_this_clones_patches():
    manager = ModelManager("cpu", budgets={"cpu": 2**30})
    base = PatchedModel(nn.Linear(4, 4), name="linear")
    lora = base.clone()
    lora.add_patches({"weight": torch.ones(4, 4)})
    assert not manager.is_ready(base)
    manager.ensure_loaded(base)
    assert manager.is_ready(base) and manager.is_loaded(lora) and not manager.is_ready(lora)
    assert not manager.is_ready([base, lora])
    loads = manager.stats.loads
    manager.ensure_loaded(lora)  # resident already: re-patched in place, not loaded again
    assert manager.is_ready(lora) and not manager.is_ready(base) and manager.stats.loads == loads
    manager.ensure_loaded(lora)
    assert manager.stats.repatches == 1


# -- one load cache ---------------------------------------------------------------------------------------------


def test_one_cache_serves_every_family_and_forgets_a_file_when_its_values_go(models):
    reads = load_cache().reads
    sd, wan = _file(models, "checkpoints", "tiny-sd1.safetensors"), _file(models, "diffusion_models", "tiny-wan.safetensors")
    before = dict(reads)
    first = load_model_file("checkpoints", sd)
    dit = load_model_file("diffusion_models", wan)
    again, dit_again = load_model_file("checkpoints", sd), load_model_file("diffusion_models", wan)
    assert reads["checkpoint"] == before.get("checkpoint", 0) + 1
    assert reads["diffusion_model"] == before.get("diffusion_model", 0) + 1
    assert again[0].patcher.shares_weights(first[0].patcher) and dit_again.patcher.shares_weights(dit.patcher)
    cached = {key[1] for key, _ in load_cache().records()}
    assert str(sd.resolve()) in cached and str(wan.resolve()) in cached

    # A rewritten file (new mtime) is another file: read again.
    stat = sd.stat()
    os.utime(sd, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    newer = load_model_file("checkpoints", sd)
    assert reads["checkpoint"] == before.get("checkpoint", 0) + 2
    assert not newer[0].patcher.shares_weights(first[0].patcher)

    # When no value holds the file's record any more, the cache lets it go and the next load reads the file.
    del first, again, newer, dit, dit_again
    gc.collect()
    assert not [key for key, _ in load_cache().records() if key[1] in (str(sd.resolve()), str(wan.resolve()))]
    load_model_file("diffusion_models", wan)
    assert reads["diffusion_model"] == before.get("diffusion_model", 0) + 2


def test_one_thread_loads_a_file_while_the_others_wait(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    cache, made, got = LoadCache(), [], []

    def make():
        made.append(threading.get_ident())
        time.sleep(0.2)
        return Loaded(path, value=len(made))

    threads = [threading.Thread(target=lambda: got.append(cache.load("toy", path, make))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len({id(r) for r in got}) == 1 and cache.reads["toy"] == 1
    # Other options are another load.
    assert cache.load("toy", path, make, "fp8") is not got[0] and len(made) == 2


def test_a_failed_load_is_not_cached_and_the_next_caller_tries_again(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    cache = LoadCache()

    def broken():
        raise ValueError(f"{path.name}: not a checkpoint")

    with pytest.raises(ValueError, match="weights.bin"):
        cache.load("toy", path, broken)
    assert cache.load("toy", path, lambda: Loaded(path, ok=True)).ok and cache.reads["toy"] == 1


def test_keep_recent_holds_records_no_value_holds(tmp_path):
    cache = LoadCache()
    cache.keep_recent("lora", 1)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    cache.load("lora", a, lambda: Loaded(a))
    assert cache.load("lora", a, lambda: Loaded(a)) and cache.reads["lora"] == 1  # kept though nothing holds it
    cache.load("lora", b, lambda: Loaded(b))  # pushes a out of the one kept
    gc.collect()
    cache.load("lora", a, lambda: Loaded(a))
    assert cache.reads["lora"] == 3


# -- the generic loader nodes -----------------------------------------------------------------------------------


def test_loader_nodes_dispatch_to_each_family(models):
    model, clip, vae = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    assert (model.family, clip.family) == ("sd1", "sd1") and vae.latent_channels == 4
    (wan,) = UNETLoader().load_unet("tiny-wan.safetensors")
    assert wan.family == "wan21"
    (sd_vae,) = VAELoader().load_vae("tiny-vae.safetensors")
    (wan_vae,) = VAELoader().load_vae("tiny-wan-vae.safetensors")
    assert (sd_vae.latent_channels, wan_vae.latent_channels) == (4, 16)
    types = CLIPLoader.INPUT_TYPES()["required"]["type"][0]
    assert types[0] == "stable_diffusion" and "wan" in types
    (sd_clip,) = CLIPLoader().load_clip("tiny-clip-l.safetensors", "stable_diffusion")
    (umt5,) = CLIPLoader().load_clip("tiny-umt5.safetensors", "wan", device="cpu")
    assert (sd_clip.family, umt5.family) == ("sd1", "wan")
    # A whole checkpoint picked in VAELoader gives its VAE, as ComfyUI's does.
    ckpt_vae = load_model_file("vae", _file(models, "checkpoints", "tiny-sd1.safetensors"))
    torch.testing.assert_close(ckpt_vae.decode(torch.zeros(1, 4, 4, 4)), vae.decode(torch.zeros(1, 4, 4, 4)))


def test_a_file_no_plugin_loads_is_named_with_its_format_and_the_installed_loaders(models):
    # A known format in the wrong folder: a Wan diffusion model picked as a checkpoint.
    misplaced = models / "checkpoints" / "wan-as-checkpoint.safetensors"
    misplaced.write_bytes(_file(models, "diffusion_models", "tiny-wan.safetensors").read_bytes())
    with pytest.raises(NoModelLoaderError) as info:
        CheckpointLoaderSimple().load_checkpoint("wan-as-checkpoint.safetensors")
    message = str(info.value)
    assert message.startswith("CheckpointLoaderSimple: wan-as-checkpoint.safetensors: detected format 'wan21-t2v'")
    assert "installed loaders for checkpoints: flux1-checkpoint, sd1, sd2, sd2_unclip, sdxl, sdxl_refiner" in message

    # An unknown file: detection's own message, and what is installed for the kind.
    unknown = models / "vae" / "mystery.safetensors"
    save_file({"some.weight": torch.zeros(2)}, str(unknown))
    with pytest.raises(NoModelLoaderError, match=r"mystery.safetensors: unknown model architecture.*"
                                                   r"installed loaders for vae: .*sd_vae.*wan21_vae"):
        VAELoader().load_vae("mystery.safetensors")
    with pytest.raises(NoModelLoaderError, match=r"tiny-umt5.safetensors: .* of type 'nonesuch'"):
        CLIPLoader().load_clip("tiny-umt5.safetensors", "nonesuch")


def test_load_model_file_without_plugins_says_so(tmp_path, monkeypatch):
    import hearth.core.plugins as plugins

    monkeypatch.setattr(plugins, "active_plugins", lambda: None)
    with pytest.raises(RuntimeError, match="no plugins are loaded"):
        load_model_file("vae", tmp_path / "any.safetensors")
