"""resolve_model_format: a plugin names a checkpoint's format before the sentinel tables are scored."""

from __future__ import annotations

from hearth.core.hookspecs import hookimpl
from hearth.core.models.detection import detect_with_plugins
from hearth.core.models.formats import ModelFormat

SHAPES = {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}


class Formats:
    @hookimpl
    def register_model_formats(self):
        return [ModelFormat("toy-eps", {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}),
                ModelFormat("toy-v", {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
                                      "model.diffusion_model.v_marker": None})]


class Resolver:
    @hookimpl
    def resolve_model_format(self, path, metadata, formats):
        if metadata.get("prediction") == "v" or path.endswith("-v.safetensors"):
            return next(f for f in formats if f.name == "toy-v")
        return None


def test_hook_resolve_model_format(hearth_plugins, register_plugin):
    register_plugin(Formats(), "toy-formats")
    # Without a resolver the tables decide: only toy-eps matches every sentinel.
    assert detect_with_plugins(SHAPES, hearth_plugins).name == "toy-eps"
    register_plugin(Resolver(), "toy-resolver")
    # The resolver declines for this input (returns None), so the tables still decide ...
    assert detect_with_plugins(SHAPES, hearth_plugins).name == "toy-eps"


def test_resolver_answer_wins_over_tables(hearth_plugins, register_plugin, tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "model-v.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}, str(path))
    register_plugin(Formats(), "toy-formats")
    register_plugin(Resolver(), "toy-resolver")
    # ... and when it answers, its answer wins even though toy-v's table does not match the keys.
    assert detect_with_plugins(path, hearth_plugins).name == "toy-v"
