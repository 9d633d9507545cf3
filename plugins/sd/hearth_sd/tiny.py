"""Tiny SD checkpoints for tests and demos: random weights in the real key layout, a few MB, no download.

A tiny file loads through :func:`hearth_sd.checkpoint.load_checkpoint` like a real one. Its text encoders keep
the real 49,408-token vocabulary (so the real tokenizer drives them) with 32-wide embeddings; what shapes cannot
say (attention heads) is written to the ``hearth.sd.config`` metadata, and SD2's v prediction to ModelSpec's
``modelspec.prediction_type``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from hearth.core.models import write_safetensors

from .checkpoint import CONFIG_METADATA_KEY
from .clip_text import CLIPTextEncoder
from .clip_vision import CONFIG_METADATA_KEY as VISION_CONFIG_KEY
from .clip_vision import TINY as TINY_VISION
from .clip_vision import CLIPVisionEncoder, to_open_clip
from .families import get_family
from .formats import PREDICTION_METADATA_KEY, UNCLIP_VISION_PREFIX, UNET_PREFIX, VAE_PREFIX
from .open_clip_text import OpenCLIPTextEncoder
from .unet import UNetModel
from .vae import AutoencoderKL

# The families `make_tiny_models` writes (sd2_unclip has its own tiny model, see models_clip_vision).
TINY_FAMILIES = ("sd1", "sd2", "sdxl", "sdxl_refiner")


def tiny_state_dict(family_name: str, seed: int = 0, in_channels: int | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (float16, contiguous) and metadata of a tiny checkpoint of ``family_name``; ``in_channels``
    widens its UNet's input: 9 for an inpainting model (latent + mask + masked-image latent), 8 for
    InstructPix2Pix (latent + source image latent)."""
    family = get_family(family_name)
    unet = replace(family.unet_tiny, in_channels=in_channels) if in_channels else family.unet_tiny
    parts: list[tuple[str, torch.nn.Module]] = []
    # A private RNG stream: the weights depend on the seed only, and the caller's global RNG is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        parts.append((UNET_PREFIX, UNetModel(unet)))
        parts.append((VAE_PREFIX, AutoencoderKL(family.vae_tiny)))
        for spec in family.text_encoders:
            module_type = CLIPTextEncoder if spec.layout == "hf" else OpenCLIPTextEncoder
            parts.append((spec.prefix, module_type(spec.tiny)))
        vision = CLIPVisionEncoder(TINY_VISION) if family.adm == "unclip" else None
    tensors = {
        prefix + key: value.detach().to(torch.float16).contiguous()
        for prefix, module in parts
        for key, value in module.state_dict().items()
    }
    extra: dict[str, str] = {}
    if vision is not None:  # an unCLIP checkpoint carries its image encoder, in OpenCLIP's layout
        tensors.update({k: v.detach().to(torch.float16).contiguous()
                        for k, v in to_open_clip(vision.state_dict(), UNCLIP_VISION_PREFIX).items()})
        extra[VISION_CONFIG_KEY] = json.dumps({"name": "tiny CLIP vision", "config": {
            "heads": TINY_VISION.heads, "activation": TINY_VISION.activation}})
    config = {
        "unet": {"num_heads": unet.num_heads, "num_head_channels": unet.num_head_channels},
        "text_heads": {spec.name: spec.tiny.heads for spec in family.text_encoders},
    }
    metadata = {
        CONFIG_METADATA_KEY: json.dumps(config, sort_keys=True),
        PREDICTION_METADATA_KEY: "v" if family.prediction == "v" else "epsilon",
        "hearth.sd.family": family.name,
        "hearth.sd.tiny": "random weights, for tests and demos only",
        **extra,
    }
    return tensors, metadata


def make_tiny_checkpoint(family: str, path: str | Path, seed: int = 0, in_channels: int | None = None) -> Path:
    """Write a tiny ``family`` checkpoint (``sd1``, ``sd2``, ``sdxl``, ``sdxl_refiner`` or ``sd2_unclip``) to
    ``path``; ``in_channels`` 9 makes it an inpainting model, 8 an InstructPix2Pix one.

    :return: the path written. The same ``(family, seed, in_channels)`` always gives the same bytes.
    """
    tensors, metadata = tiny_state_dict(family, seed, in_channels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(tensors, path, metadata)
    return path


def tiny_checkpoint_name(family: str) -> str:
    """The file name ``make-tiny all`` gives a family's checkpoint (``tiny-sd1.safetensors``...)."""
    return f"tiny-{family.replace('_', '-')}.safetensors"


def make_tiny_models(models_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Every tiny SD checkpoint into ``models_dir/checkpoints/`` under :func:`tiny_checkpoint_name`.

    For ``comfy models make-tiny all --models-dir DIR``; example workflows name these files.
    """
    folder = Path(models_dir) / "checkpoints"
    return {name: make_tiny_checkpoint(name, folder / tiny_checkpoint_name(name), seed) for name in TINY_FAMILIES}
