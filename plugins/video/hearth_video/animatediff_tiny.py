"""Tiny AnimateDiff motion modules for tests and demos: random weights in the published key layout, no download.

They fit the SD plugin's tiny SD1 checkpoint (32/64 channels, two ResBlocks per level). ``v2`` (the default, and
``make-tiny animatediff``) has the middle module and 32-frame tables, ``v1`` 24-frame tables and no middle
module, ``v3`` 32-frame tables and no middle module: the shapes by which real files tell their version. The
heads, which shapes cannot tell, go to the ``hearth.animatediff.config`` metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .animatediff_module import CONFIG_METADATA_KEY, PUBLISHED_FRAMES, ModuleShape, MotionConfig, MotionModel

TINY_HEADS = 4
TINY_FILENAME = "tiny-animatediff-sd1.safetensors"


def tiny_config(version: str = "v2", channels: tuple[int, ...] = (32, 64), res_blocks: int = 2,
                depth: int = 1) -> MotionConfig:
    """The motion model shape for a UNet of ``channels`` per level and ``res_blocks`` ResBlocks per level."""
    if version not in PUBLISHED_FRAMES:
        raise ValueError(f"version must be one of {', '.join(PUBLISHED_FRAMES)}, got {version!r}")

    def block(c: int, n: int) -> tuple[ModuleShape, ...]:
        return tuple(ModuleShape(c, depth, 2) for _ in range(n))

    return MotionConfig(
        down=tuple(block(c, res_blocks) for c in channels),
        up=tuple(block(c, res_blocks + 1) for c in reversed(channels)),
        mid=ModuleShape(channels[-1], depth, 2) if version == "v2" else None,
        max_frames=PUBLISHED_FRAMES[version],
        heads=TINY_HEADS,
    )


def tiny_state_dict(version: str = "v2", seed: int = 0, dtype: torch.dtype = torch.float16,
                    config: MotionConfig | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (contiguous, ``dtype``; the positional tables exact) and metadata of a tiny motion module.

    Every weight is random, ``proj_out`` included (the published modules start it at zero for training; a tiny
    model with zero ``proj_out`` would do nothing and test nothing).
    """
    config = config or tiny_config(version)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 404)
        model = MotionModel(config)
        for name, p in model.named_parameters():
            with torch.no_grad():
                if name.endswith("norm.weight") or ".norms." in name or "ff_norm.weight" in name:
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
                elif name.endswith(".bias"):
                    p.copy_(0.05 * torch.randn_like(p))
    # The tables stay float32, as exact as the formula (published files store them at the weights' precision).
    tensors = {key: (value.float() if key.endswith("pos_encoder.pe") else value.to(dtype)).detach().contiguous()
               for key, value in model.state_dict().items()}
    metadata = {
        CONFIG_METADATA_KEY: json.dumps({"heads": config.heads}),
        "hearth.animatediff.version": config.version,
        "hearth.animatediff.tiny": "random weights, for tests and demos only",
    }
    return tensors, metadata


def config_for_unet(unet_config, version: str = "v2") -> MotionConfig:
    """The tiny motion model shape that fits an SD UNet config (``model_channels``, ``channel_mult``...)."""
    channels = tuple(unet_config.model_channels * m for m in unet_config.channel_mult)
    return tiny_config(version, channels, unet_config.num_res_blocks)


def write_tiny_motion_model(path: str | Path, seed: int = 0, version: str = "v2") -> Path:
    """Write a tiny motion module for the tiny SD1 checkpoint to ``path``; the same ``(seed, version)`` always
    gives the same bytes."""
    from hearth.core.models import write_safetensors

    # tiny_config's default widths are the tiny SD1 UNet's (tests/video checks they still fit it).
    tensors, metadata = tiny_state_dict(version, seed, config=tiny_config(version))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(tensors, path, metadata)
    return path
