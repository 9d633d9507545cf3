"""Test helpers: tiny SD parts wrapped as Hearth models, MODEL/CLIP stand-ins, and LoRA files from dicts."""

from __future__ import annotations

from pathlib import Path

import torch
from hearth_sd.clip_text import CLIPTextEncoder
from hearth_sd.families import FAMILIES
from hearth_sd.open_clip_text import OpenCLIPTextEncoder
from hearth_sd.unet import UNetModel
from safetensors.torch import save_file

from hearth.core.models import PatchedModel


def tiny_parts(family: str, seed: int = 0, dtype=torch.float32) -> dict[str, torch.nn.Module]:
    """The UNet and text encoders of a tiny ``family`` model with random weights, keyed ``unet`` / ``l`` / ``g``..."""
    fam = FAMILIES[family]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        parts = {"unet": UNetModel(fam.unet_tiny)}
        for spec in fam.text_encoders:
            parts[spec.name] = (CLIPTextEncoder if spec.layout == "hf" else OpenCLIPTextEncoder)(spec.tiny)
    return {name: m.to(dtype).eval().requires_grad_(False) for name, m in parts.items()}


class FakeModel:
    """The MODEL protocol's LoRA side: ``clone()`` sharing weights and a ``patcher``."""

    def __init__(self, patcher: PatchedModel):
        self.patcher = patcher

    def clone(self) -> FakeModel:
        return FakeModel(self.patcher.clone())


class FakeClip:
    """The CLIP protocol's LoRA side: ``clone()`` and ``patchers``, one per text encoder in family order."""

    def __init__(self, patchers: dict[str, PatchedModel]):
        self.patchers = patchers

    def clone(self) -> FakeClip:
        return FakeClip({name: p.clone() for name, p in self.patchers.items()})


def fake_model_and_clip(family: str, seed: int = 0, dtype=torch.float32) -> tuple[FakeModel, FakeClip]:
    parts = tiny_parts(family, seed, dtype)
    unet = parts.pop("unet")
    model = FakeModel(PatchedModel(unet, name=f"tiny-{family}", load_device="cpu"))
    clip = FakeClip({name: PatchedModel(m, name=f"tiny-{family}-{name}", load_device="cpu") for name, m in parts.items()})
    return model, clip


def weights(patcher: PatchedModel) -> dict[str, torch.Tensor]:
    """A copy of every tensor the patcher's module holds now."""
    return {k: v.detach().clone() for k, v in patcher.module.state_dict().items()}


def write_lora(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path
