"""KSampler on a tiny SD1 checkpoint through the executor: one seed gives one image, byte for byte."""

from __future__ import annotations

import pytest

pytest.importorskip("hearth_sd.tiny", reason="the SD plugin provides the MODEL this test samples")

from hearth_sd.tiny import make_tiny_checkpoint  # noqa: E402


@pytest.fixture
def sd1_folders(hearth_runtime):
    """The tiny SD1 checkpoint in the models folder of the test's Runtime (the one run_prompt runs in)."""
    make_tiny_checkpoint("sd1", hearth_runtime.model_folders.folders("checkpoints")[0] / "tiny-sd1.safetensors")


def _prompt(seed: int, sampler: str) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd1.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox in the snow", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "seed": seed, "steps": 3, "cfg": 6.0, "sampler_name": sampler,
            "scheduler": "karras", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "e2e"}},
    }


def _pngs(result, folders) -> list[bytes]:
    assert result.ok, result.error
    images = result.outputs["7"]["images"]
    return [(folders.output / image["subfolder"] / image["filename"]).read_bytes() for image in images]


@pytest.mark.parametrize("sampler", ["euler_ancestral"])
def test_same_seed_same_png_bytes(sd1_folders, run_prompt, hearth_folders, sampler: str) -> None:
    first = _pngs(run_prompt(_prompt(42, sampler), cache="none"), hearth_folders)
    second = _pngs(run_prompt(_prompt(42, sampler), cache="none"), hearth_folders)
    other = _pngs(run_prompt(_prompt(43, sampler), cache="none"), hearth_folders)
    assert len(first) == 2 and first == second
    assert other != first
