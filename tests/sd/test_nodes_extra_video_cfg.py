"""VideoLinearCFGGuidance / VideoTriangleCFGGuidance against ComfyUI's definitions (nodes_video_model.py), and one
run through the executor and the real samplers on the tiny SD1 checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_sd.nodes_extra_video_cfg import VideoLinearCFGGuidance, VideoTriangleCFGGuidance
from hearth_sd.tiny import make_tiny_checkpoint

from hearth.core.executor import Executor
from hearth.core.node_registry import NodeRegistry
from hearth.core.nodes import NodeDefinition
from hearth.core.runtime import current_runtime
from tests.sd.nodes_testing import in_runtime


class Model:
    """The MODEL protocol's surface these nodes touch."""

    def __init__(self) -> None:
        self.model_options: dict = {}

    def clone(self) -> Model:
        twin = Model()
        twin.model_options = dict(self.model_options)
        return twin


def guide(node, min_cfg: float, frames: int, cfg: float = 7.0) -> torch.Tensor:
    (patched,) = node.patch(Model(), min_cfg)
    fn = patched.model_options["sampler_cfg_function"]
    cond, uncond = torch.ones(frames, 4, 2, 2), torch.zeros(frames, 4, 2, 2)
    return fn({"cond": cond, "uncond": uncond, "cond_scale": cfg})[:, 0, 0, 0]


def test_linear_guidance_runs_from_min_cfg_to_cfg_over_the_frames() -> None:
    # cond - uncond = 1 everywhere, so the result is the scale each frame got.
    assert torch.allclose(guide(VideoLinearCFGGuidance(), 1.0, 4), torch.tensor([1.0, 3.0, 5.0, 7.0]))
    assert torch.allclose(guide(VideoLinearCFGGuidance(), 2.0, 1), torch.tensor([2.0]))  # linspace of one: start


def test_triangle_guidance_peaks_in_the_middle() -> None:
    assert torch.allclose(guide(VideoTriangleCFGGuidance(), 1.0, 5), torch.tensor([1.0, 4.0, 7.0, 4.0, 1.0]))


def test_the_given_model_is_not_patched() -> None:
    model = Model()
    (patched,) = VideoLinearCFGGuidance().patch(model, 1.0)
    assert patched is not model and "sampler_cfg_function" not in model.model_options
    with pytest.raises(ValueError, match="VideoLinearCFGGuidance: model is not a MODEL"):
        VideoLinearCFGGuidance().patch(torch.zeros(1), 1.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    make_tiny_checkpoint("sd1", folder / "checkpoints" / "tiny-sd1.safetensors")
    return folder


class PreviewLatent:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "keep"
    captured: dict = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",)}}

    def keep(self, samples):
        PreviewLatent.captured["samples"] = samples["samples"]
        return {}


def sample(batch: int, cfg: float, linear: float | None) -> torch.Tensor:
    """The latent KSampler returns (1 euler step) for "a cat", optionally through VideoLinearCFGGuidance; runs in
    the active Runtime."""
    registry = current_runtime().nodes
    registry = NodeRegistry({**registry, "PreviewLatent": NodeDefinition("PreviewLatent", PreviewLatent)},
                            registry.types)
    model = ["1", 0]
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd1.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": batch}},
        "6": {"class_type": "PreviewLatent", "inputs": {"samples": ["5", 0]}},
    }
    if linear is not None:
        prompt["7"] = {"class_type": "VideoLinearCFGGuidance", "inputs": {"model": ["1", 0], "min_cfg": linear}}
        model = ["7", 0]
    prompt["5"] = {"class_type": "KSampler", "inputs": {
        "model": model, "seed": 3, "steps": 1, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal",
        "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}}
    result = Executor(registry).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    return PreviewLatent.captured.pop("samples")


def test_a_sampled_batch_gets_each_frames_own_cfg(models: Path) -> None:
    # Frame 0 is guided at min_cfg and frame 1 (the last) at the sampler's cfg: each equals that frame of a plain
    # run at that cfg (same seed, same batch, so the same noise; the UNet treats batch items independently).
    with in_runtime(models):  # one Runtime: the checkpoint loads once for the three runs
        patched = sample(2, 7.0, linear=1.0)
        plain_low, plain_high = sample(2, 1.0, None), sample(2, 7.0, None)
    torch.testing.assert_close(patched[0], plain_low[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(patched[1], plain_high[1], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(plain_low[1], plain_high[1], atol=1e-3)  # the cfg makes a visible difference
