"""Helpers for the samplers' node tests that run a workflow on the tiny SD1 checkpoint through the real executor.

``sd_pack`` writes the tiny checkpoint into the test Runtime's models folder and registers a ``Keep`` output node
that records what reaches it (``KEPT[name]``); ``sd1_prompt`` is the usual text-to-image graph around a sampler.
"""

from __future__ import annotations

from typing import Any

import pytest

from hearth.core.hookspecs import hookimpl

KEPT: dict[str, Any] = {}


class Keep:
    CATEGORY = "testing"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "keep"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": ("STRING", {"default": "value"})},
                "optional": {"model": ("MODEL",), "sigmas": ("SIGMAS",), "latent": ("LATENT",),
                             "sampler": ("SAMPLER",), "number": ("FLOAT",), "guider": ("GUIDER",)}}

    def keep(self, name, **values):
        (KEPT[name],) = values.values()
        return {}


class KeepPack:
    @hookimpl
    def register_nodes(self):
        return {"Keep": Keep}


@pytest.fixture
def sd_pack(hearth_runtime, register_plugin, hearth_plugins):
    """The tiny SD1 checkpoint ("tiny-sd1.safetensors") and the Keep node, in the test's Runtime."""
    tiny = pytest.importorskip("hearth_sd.tiny", reason="the SD plugin provides the MODEL these tests sample")
    tiny.make_tiny_checkpoint("sd1", hearth_runtime.model_folders.folders("checkpoints")[0] / "tiny-sd1.safetensors")
    register_plugin(KeepPack(), "keep_pack")
    KEPT.clear()
    return hearth_plugins


def sd1_prompt(model: list | None = None, steps: int = 2, cfg: float = 4.0, sampler: str = "euler",
               **extra: dict[str, Any]) -> dict[str, Any]:
    """Loader "1", prompts "2"/"3", a 64x64 latent "4", KSampler "5" on ``model`` (default the loader's), and
    ``extra`` nodes by id."""
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd1.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": model or ["1", 0], "seed": 3, "steps": steps, "cfg": cfg, "sampler_name": sampler,
            "scheduler": "normal", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "denoise": 1.0}},
        "6": {"class_type": "Keep", "inputs": {"name": "latent", "latent": ["5", 0]}},
    }
    prompt.update(extra)
    return prompt
