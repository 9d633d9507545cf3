"""ControlNet / T2I-Adapter nodes on the tiny SD models: through the executor, strength, start/end percent as
ComfyUI maps them to sigmas, chains, hint resizing and batches, memory through the manager, and bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hearth_sd.nodes_controlnet import (
    ControlNetApplyAdvanced,
)
from hearth_sd.nodes_text import CLIPTextEncode

from hearth.core.models.loader_nodes import CheckpointLoaderSimple
from tests.sd.nodes_testing import image, in_runtime, make_models

CN_SD1 = "tiny-controlnet-sd1.safetensors"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def folders(models):
    with in_runtime(models) as f:
        yield f


@pytest.fixture
def sd1(folders):
    model, clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    (positive,) = CLIPTextEncode().encode(clip, "a lighthouse at dusk")
    (negative,) = CLIPTextEncode().encode(clip, "blurry")
    return model, positive, negative


def _denoise(model, conditioning, sigma: float = 2.0, seed: int = 0) -> torch.Tensor:
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(seed))
    cond, options = conditioning[0]
    return model.denoise(x, torch.full((2,), sigma), cond.repeat(2, 1, 1), options)


def _apply(positive, negative, control_net, hint, strength=1.0, start=0.0, end=1.0):
    return ControlNetApplyAdvanced().apply_controlnet(positive, negative, control_net, hint, strength, start, end)


def _pixels(result, folders) -> list[list[int]]:
    from PIL import Image

    assert result.ok, result.error
    return [np.asarray(Image.open(folders.output / i["subfolder"] / i["filename"])).tolist()
            for i in result.outputs["9"]["images"]]


def test_workflow_with_a_controlnet_differs_and_strength_zero_does_not(hearth_runtime, run_prompt, hearth_folders):
    from hearth_sd.controlnet_tiny import write_tiny
    from hearth_sd.tiny import make_tiny_checkpoint

    from hearth.core.images import tensor_to_pil

    folders = hearth_runtime.model_folders
    make_tiny_checkpoint("sd1", folders.folders("checkpoints")[0] / "tiny-sd1.safetensors")
    write_tiny("controlnet", "sd1", folders.folders("controlnet")[0] / CN_SD1)
    tensor_to_pil(image(1, 48, 80, seed=3)[0]).save(hearth_folders.input / "hint.png")  # resized to 64x64

    def prompt(strength: float | None) -> dict:
        nodes = {
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd1.safetensors"}},
            "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["1", 1]}},
            "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
            "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "5": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": CN_SD1}},
            "6": {"class_type": "LoadImage", "inputs": {"image": "hint.png"}},
            "7": {"class_type": "ControlNetApplyAdvanced", "inputs": {
                "positive": ["2", 0], "negative": ["3", 0], "control_net": ["5", 0], "image": ["6", 0],
                "strength": strength, "start_percent": 0.0, "end_percent": 1.0}},
            "8": {"class_type": "KSampler", "inputs": {
                "model": ["1", 0], "seed": 7, "steps": 2, "cfg": 5.0, "sampler_name": "euler",
                "scheduler": "normal", "positive": ["7", 0], "negative": ["7", 1], "latent_image": ["4", 0],
                "denoise": 1.0}},
            "10": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "cn"}},
        }
        if strength is None:  # the same graph without the ControlNet
            for node in ("5", "6", "7"):
                del nodes[node]
            nodes["8"]["inputs"].update(positive=["2", 0], negative=["3", 0])
        return nodes

    without, zero, controlled = (_pixels(run_prompt(prompt(s), cache="none"), hearth_folders)
                                 for s in (None, 0.0, 1.0))
    assert zero == without
    assert controlled != without
