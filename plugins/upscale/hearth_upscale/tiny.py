"""Tiny upscale models for tests and demos (``comfy models make-tiny esrgan-tiny`` ...): random weights, real layouts.

Each is a few hundred KB in a layout a real file uses, so it loads through UpscaleModelLoader as a real one does:
the original ESRGAN layout at 4x, Real-ESRGAN's new layout at 2x (pixel-unshuffle input) and the compact
SRVGGNetCompact at 4x. The same seed always gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hearth.core.models import write_safetensors

from .compact import CompactConfig, SRVGGNetCompact
from .esrgan import ESRGANConfig, RRDBNet

ESRGAN_X4 = ESRGANConfig(in_channels=3, out_channels=3, features=8, growth=4, blocks=2, upsamples=2, unshuffle=1)
REALESRGAN_X2 = ESRGANConfig(in_channels=3, out_channels=3, features=8, growth=4, blocks=2, upsamples=2, unshuffle=2)
COMPACT_X4 = CompactConfig(in_channels=3, out_channels=3, features=8, convs=2, scale=4)


def esrgan_old_keys(state: dict[str, torch.Tensor], upsamples: int) -> dict[str, torch.Tensor]:
    """A new-layout RRDBNet state dict in the original ESRGAN layout (the inverse of ``convert_esrgan_old``)."""
    blocks = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("body."))
    tail = {f"conv_up{n}": 3 * n for n in range(1, upsamples + 1)}
    tail["conv_hr"] = 3 * upsamples + 2
    tail["conv_last"] = 3 * upsamples + 4
    out = {}
    for key, tensor in state.items():
        name, _, kind = key.rpartition(".")
        if name == "conv_first":
            out[f"model.0.{kind}"] = tensor
        elif name == "conv_body":
            out[f"model.1.sub.{blocks}.{kind}"] = tensor
        elif name in tail:
            out[f"model.{tail[name]}.{kind}"] = tensor
        else:
            _, block, rdb, conv = name.split(".")
            out[f"model.1.sub.{block}.RDB{rdb[-1]}.{conv}.0.{kind}"] = tensor
    return out


def _random(module_type: type, config: object, seed: int) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = module_type(config)
        # Small weights keep the 23-layer-deep residual sums in range, so the output is an image, not noise.
        for param in module.parameters():
            param.data.mul_(0.5)
    return {key: value.detach().contiguous() for key, value in module.state_dict().items()}


def write_esrgan(path: Path, seed: int = 0) -> None:
    state = esrgan_old_keys(_random(RRDBNet, ESRGAN_X4, seed), ESRGAN_X4.upsamples)
    _write(state, path, "ESRGAN (original layout) 4x")


def write_realesrgan_x2(path: Path, seed: int = 0) -> None:
    _write(_random(RRDBNet, REALESRGAN_X2, seed), path, "Real-ESRGAN (new layout) 2x, pixel-unshuffle input")


def write_compact(path: Path, seed: int = 0) -> None:
    _write(_random(SRVGGNetCompact, COMPACT_X4, seed), path, "Real-ESRGAN compact (SRVGGNetCompact) 4x")


def _write(state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(state, path, {"hearth.upscale.tiny": f"{what}: random weights, for tests and demos only"})
