"""register_model_loaders: a plugin teaches ComfyUI's generic loader nodes (CLIPLoader, VAELoader) a new family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hearth.core.hookspecs import hookimpl
from hearth.core.models.formats import ModelFormat

loaded: list[tuple[str, str, dict]] = []


class ToyFamily:
    @hookimpl
    def register_model_formats(self):
        return [ModelFormat("toy-vae", {"toy.decoder.weight": None})]

    @hookimpl
    def register_model_loaders(self):
        def text(path, **options):
            loaded.append(("text", Path(path).name, options))
            return "toy clip"

        def vae(path, **options):
            loaded.append(("vae", Path(path).name, options))
            return "toy vae"

        return {("text_encoders", "toy"): text, ("vae", "toy-vae"): vae}


@pytest.fixture
def models(hearth_runtime) -> Path:
    """The toy files, in the models folder of the test's Runtime (the one the loader nodes list)."""
    base = hearth_runtime.model_folders.base
    (base / "text_encoders").mkdir(parents=True)
    (base / "vae").mkdir(parents=True)
    save_file({"anything": torch.zeros(1)}, str(base / "text_encoders" / "toy-text.safetensors"))
    save_file({"toy.decoder.weight": torch.zeros(2)}, str(base / "vae" / "toy-vae.safetensors"))
    loaded.clear()
    return base


def test_hook_register_model_loaders(hearth_plugins, register_plugin, models):
    register_plugin(ToyFamily(), "toy-family")
    found = hearth_plugins.resolve_named("register_model_loaders", "model loader")
    assert {("text_encoders", "toy"), ("vae", "toy-vae")} <= set(found)

    nodes = hearth_plugins.nodes()
    clip_loader = nodes["CLIPLoader"].cls
    types = clip_loader.INPUT_TYPES()["required"]["type"][0]
    assert types[0] == "stable_diffusion" and "toy" in types
    assert clip_loader().load_clip("toy-text.safetensors", type="toy", device="cpu") == ("toy clip",)
    assert loaded[-1] == ("text", "toy-text.safetensors", {"device": "cpu"})

    # VAELoader detects the file's format and hands it to the loader registered for that format.
    assert nodes["VAELoader"].cls().load_vae("toy-vae.safetensors") == ("toy vae",)
    assert loaded[-1][:2] == ("vae", "toy-vae.safetensors")


def test_an_unknown_clip_type_names_itself(hearth_plugins, models):
    clip_loader = hearth_plugins.nodes()["CLIPLoader"].cls
    with pytest.raises(ValueError, match="'nonesuch'"):
        clip_loader().load_clip("toy-text.safetensors", type="nonesuch")


def test_comfyuis_clip_types_are_listed_and_a_missing_family_is_named_at_load(hearth_plugins, models):
    # Templates pick these types: the workflow must open and validate, and only loading says what is missing.
    clip_loader = hearth_plugins.nodes()["CLIPLoader"].cls
    types = clip_loader.INPUT_TYPES()["required"]["type"][0]
    assert {"qwen_image", "flux2", "lumina2", "ltxv", "stable_audio", "minimax"} <= set(types)
    with pytest.raises(ValueError, match="no installed plugin loads text_encoders of type 'qwen_image'"):
        clip_loader().load_clip("toy-text.safetensors", type="qwen_image")


def test_vae_loader_lists_pixel_space_and_says_no_family_uses_it_yet(hearth_plugins, models):
    vae_loader = hearth_plugins.nodes()["VAELoader"].cls
    assert vae_loader.INPUT_TYPES()["required"]["vae_name"][0][-1] == "pixel_space"
    with pytest.raises(ValueError, match="pixel_space is for model families that denoise pixels"):
        vae_loader().load_vae("pixel_space")
