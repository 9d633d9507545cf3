"""Tiny ControlNet and T2I-Adapter files for tests and demos: random weights in the published layouts, fitting the
tiny SD checkpoints of :mod:`hearth_sd.tiny` (same UNet widths, context and ADM sizes), a few hundred KB each.

Unlike a freshly initialised real ControlNet, the zero convolutions are random too, so a tiny ControlNet visibly
changes what the tiny UNet predicts. The family and the attention heads are written to the metadata, as the tiny
checkpoints do.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hearth.core.models import write_safetensors

from .checkpoint import CONFIG_METADATA_KEY, FAMILY_METADATA_KEY
from .controlnet_model import ControlNetConfig, ControlNetModel
from .families import get_family
from .t2i_adapter import FullAdapter

TINY_HINT_WIDTHS = (8, 16, 16, 32)  # three stride-2 steps, as the real (16, 32, 96, 256): the hint is 8x the latent
TINY_NOTE = "random weights, for tests and demos only"


def tiny_controlnet(family_name: str, seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (float16, bare LDM layout) and metadata of a tiny ControlNet for ``family_name``."""
    family = get_family(family_name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 404)
        module = ControlNetModel(ControlNetConfig(family.unet_tiny, hint_widths=TINY_HINT_WIDTHS))
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    unet = family.unet_tiny
    metadata = {CONFIG_METADATA_KEY: json.dumps({"unet": {"num_heads": unet.num_heads,
                                                          "num_head_channels": unet.num_head_channels}}),
                FAMILY_METADATA_KEY: family.name, "hearth.sd.tiny": TINY_NOTE}
    return tensors, metadata


def tiny_t2i_adapter(family_name: str = "sd1", seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A tiny full T2I-Adapter (RGB hint) whose features fit the tiny UNet of ``family_name`` (SD1 or SDXL)."""
    family = get_family(family_name)
    xl = family.name in ("sdxl", "sdxl_refiner")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 505)
        module = FullAdapter(3 * (16 if xl else 8) ** 2, family.unet_tiny.model_channels, xl=xl)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    return tensors, {FAMILY_METADATA_KEY: family.name, "hearth.sd.tiny": TINY_NOTE}


def write_tiny(kind: str, family: str, path: str | Path, seed: int = 0) -> Path:
    """Write a tiny ``kind`` (``"controlnet"`` or ``"t2i_adapter"``) for ``family`` to ``path``."""
    tensors, metadata = (tiny_controlnet if kind == "controlnet" else tiny_t2i_adapter)(family, seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(tensors, path, metadata)
    return path
