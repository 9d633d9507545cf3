"""The API-format workflows the parity harness runs on both servers, one builder per kind of workflow.

Every workflow saves its decoded images under ``parity/<name>/img`` and its sampled latent through the harness's
own latent node at ``<latents>/<name>.safetensors``, so outputs are found by name, not by history parsing. The
prompts, seed and CFG are fixed: the comparison is of the two programs, not of the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

POSITIVE = "a red fox in a snowy forest, detailed, sharp focus"
NEGATIVE = "blurry, low quality"
AREA_LEFT = "a castle on a hill"
AREA_RIGHT = "a calm lake at sunset"
SEED = 42
CFG = 6.5
SCHEDULERS = ("normal", "karras")


@dataclass(frozen=True)
class Settings:
    """What every workflow shares: the checkpoint and LoRA file names, steps, image size, input image name and
    the folder the latent node writes to."""

    checkpoint: str
    lora: str
    steps: int
    size: int
    image: str
    latents: Path


def _base(s: Settings, name: str, sampler: str, scheduler: str, *, batch: int = 1, denoise: float = 1.0,
          seed: int = SEED) -> dict[str, Any]:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": s.checkpoint}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": POSITIVE, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": s.size, "height": s.size, "batch_size": batch}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "seed": seed, "steps": s.steps, "cfg": CFG, "sampler_name": sampler,
            "scheduler": scheduler, "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "denoise": denoise}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": f"parity/{name}/img"}},
        "8": {"class_type": "HearthParitySaveLatent", "inputs": {
            "samples": ["5", 0], "path": str(s.latents / f"{name}.safetensors")}},
    }


def sampler_workflow(s: Settings, sampler: str, scheduler: str) -> tuple[str, dict[str, Any]]:
    """txt2img with one sampler and schedule."""
    name = f"{sampler}-{scheduler}"
    return name, _base(s, name, sampler, scheduler)


def lora_workflow(s: Settings) -> tuple[str, dict[str, Any]]:
    """txt2img (euler, normal) through a LoraLoader at strength 1 on the UNet and the text encoder."""
    name = "lora-euler"
    prompt = _base(s, name, "euler", "normal")
    prompt["9"] = {"class_type": "LoraLoader", "inputs": {
        "model": ["1", 0], "clip": ["1", 1], "lora_name": s.lora, "strength_model": 1.0, "strength_clip": 1.0}}
    prompt["2"]["inputs"]["clip"] = prompt["3"]["inputs"]["clip"] = ["9", 1]
    prompt["5"]["inputs"]["model"] = ["9", 0]
    return name, prompt


IMG2IMG_DENOISE = 0.6


def img2img_workflow(s: Settings) -> tuple[str, dict[str, Any]]:
    """The input image encoded, then euler/normal at denoise 0.6."""
    name = f"img2img-{IMG2IMG_DENOISE}"
    prompt = _base(s, name, "euler", "normal", denoise=IMG2IMG_DENOISE)
    prompt["10"] = {"class_type": "LoadImage", "inputs": {"image": s.image}}
    prompt["4"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["1", 2]}}
    return name, prompt


def area_workflow(s: Settings) -> tuple[str, dict[str, Any]]:
    """Two prompts, each on one half of the image (ConditioningSetArea), combined (ConditioningCombine).

    ConditioningSetArea takes areas of 64 pixels or more, so the image is twice as wide as ``size`` (at least
    128) and at least 64 high.
    """
    name = "area-euler"
    prompt = _base(s, name, "euler", "normal")
    width, height = max(2 * s.size, 128), max(s.size, 64)
    half = width // 2
    prompt["4"]["inputs"].update(width=width, height=height)
    prompt["11"] = {"class_type": "CLIPTextEncode", "inputs": {"text": AREA_LEFT, "clip": ["1", 1]}}
    prompt["12"] = {"class_type": "CLIPTextEncode", "inputs": {"text": AREA_RIGHT, "clip": ["1", 1]}}
    prompt["13"] = {"class_type": "ConditioningSetArea", "inputs": {
        "conditioning": ["11", 0], "width": half, "height": height, "x": 0, "y": 0, "strength": 1.0}}
    prompt["14"] = {"class_type": "ConditioningSetArea", "inputs": {
        "conditioning": ["12", 0], "width": half, "height": height, "x": half, "y": 0, "strength": 1.0}}
    prompt["15"] = {"class_type": "ConditioningCombine", "inputs": {
        "conditioning_1": ["13", 0], "conditioning_2": ["14", 0]}}
    prompt["5"]["inputs"]["positive"] = ["15", 0]
    return name, prompt


def batch_workflow(s: Settings) -> tuple[str, dict[str, Any]]:
    """A batch of 2 from one seed (euler_ancestral, so per-step noise of a batch counts too)."""
    name = "batch2-euler_ancestral"
    return name, _base(s, name, "euler_ancestral", "normal", batch=2)


def warm_workflow(s: Settings, seed: int) -> dict[str, Any]:
    """The euler/normal workflow with another seed: after a first run, only sampling, decoding and saving rerun."""
    return _base(s, f"warm-{seed}", "euler", "normal", seed=seed)


def all_workflows(s: Settings, samplers: list[str]) -> dict[str, dict[str, Any]]:
    """Every sampler with each schedule, then the LoRA, img2img, area and batch workflows."""
    found = dict(sampler_workflow(s, sampler, scheduler) for sampler in samplers for scheduler in SCHEDULERS)
    for build in (lora_workflow, img2img_workflow, area_workflow, batch_workflow):
        name, prompt = build(s)
        found[name] = prompt
    return found
