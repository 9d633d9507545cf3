"""The UPSCALE_MODEL value: reading an upscale model file, telling its architecture from its keys, running it.

Detection is a table of sentinel keys (:data:`ARCHITECTURES`); the network's sizes come from the tensors' shapes.
A file that is no known upscale model (a Stable Diffusion checkpoint put in ``upscale_models``, SwinIR, HAT...)
is refused with a message that names it and what Hearth supports. Weights run in float32, as the ESRGAN family is
trained, and live in a :class:`hearth.core.models.PatchedModel` the model manager loads and evicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hearth.core.models import CheckpointError, Loaded, PatchedModel, load_into, load_once, load_state_dict

from .compact import SRVGGNetCompact, compact_config, is_compact
from .esrgan import (
    ArchitectureError,
    RRDBNet,
    convert_esrgan_old,
    esrgan_config,
    is_esrgan_new,
    is_esrgan_old,
)


class UnsupportedUpscaleModel(ValueError):
    """The file holds tensors, but not of an upscale architecture Hearth implements."""


@dataclass(frozen=True)
class Architecture:
    name: str
    detect: Callable[[Mapping[str, Any]], bool]
    convert: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]
    build: Callable[[Mapping[str, torch.Tensor]], nn.Module]


def _esrgan(state: Mapping[str, torch.Tensor]) -> nn.Module:
    return RRDBNet(esrgan_config(state))


def _compact(state: Mapping[str, torch.Tensor]) -> nn.Module:
    return SRVGGNetCompact(compact_config(state))


# First match wins; each sentinel set excludes the others.
ARCHITECTURES = (
    Architecture("ESRGAN", is_esrgan_old, convert_esrgan_old, _esrgan),
    Architecture("RealESRGAN", is_esrgan_new, dict, _esrgan),
    Architecture("SRVGGNetCompact", is_compact, dict, _compact),
)
SUPPORTED = "ESRGAN / Real-ESRGAN (RRDBNet, both key layouts, 1x/2x/4x/8x) and Real-ESRGAN compact (SRVGGNetCompact)"

# Wrappers training scripts put around the weights (BasicSR saves params / params_ema; DataParallel adds module.).
_WRAPPERS = ("params_ema", "params", "state_dict", "model", "net")


def _torch_file(path: Path) -> dict[str, torch.Tensor]:
    import pickle

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(path, f"holds Python objects besides tensors ({str(exc).splitlines()[0]})",
                              "Hearth never runs a pickle's code; use a .safetensors version of this model") from None
    except Exception as exc:  # noqa: BLE001 - whatever the unpickler trips on, the file is at fault
        raise CheckpointError(path, f"is not a readable PyTorch file ({type(exc).__name__}: {exc})",
                              "fetch the model again") from None
    for _ in range(3):
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), Mapping)), None)
            if inner is not None and not any(isinstance(v, torch.Tensor) for v in obj.values()):
                obj = inner
    if not isinstance(obj, Mapping):
        raise CheckpointError(path, f"holds a {type(obj).__name__}, not a state dict", "save model.state_dict()")
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The file's tensors as float32, unwrapped from ``params_ema``/``params`` and a ``module.`` prefix."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(16)
    # A safetensors file starts with its header's length and "{"; anything else is read as a PyTorch file, whose
    # state dict BasicSR nests one level down ({"params_ema": {...}}).
    if len(head) > 8 and head[8:9] == b"{":
        state = load_state_dict(path)
    else:
        state = _torch_file(path)
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return {key: value.float() if value.is_floating_point() else value for key, value in state.items()}


def detect(state: Mapping[str, Any], path: Path) -> Architecture:
    for arch in ARCHITECTURES:
        if arch.detect(state):
            return arch
    hint = ""
    if any(key.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")) for key in state):
        hint = " It looks like a Stable Diffusion checkpoint: put it in models/checkpoints and load it there."
    sample = ", ".join(sorted(state)[:4])
    raise UnsupportedUpscaleModel(f"{path.name} is not an upscale model Hearth can run (keys: {sample}...). "
                                  f"Supported: {SUPPORTED}.{hint}")


def build_module(state: Mapping[str, torch.Tensor], path: Path) -> tuple[nn.Module, str]:
    """The network for ``state``, its weights assigned; raises naming ``path`` when keys or shapes do not fit."""
    arch = detect(state, path)
    converted = arch.convert(state)
    try:
        with torch.device("meta"):
            module = arch.build(converted)
    except (ArchitectureError, KeyError) as exc:
        raise UnsupportedUpscaleModel(f"{path.name}: {exc}") from None
    try:
        load_into(module, converted, source=path)
    except CheckpointError as exc:
        raise UnsupportedUpscaleModel(f"{path.name} is detected as {arch.name} but its tensors do not fit it: "
                                      f"{exc}") from None
    return module.eval(), arch.name


def _memory_estimate(scale: int) -> Callable[[Any, Any], int]:
    def estimate(input_shape: tuple[int, ...] | None, dtype: Any) -> int:
        # ComfyUI's figure: a 512x512 RGB float tile times the scale times 384 for activations, plus the image.
        image = 4 * (int(torch.tensor(input_shape).prod()) if input_shape else 0)
        return int(512 * 512 * 3 * 4 * max(scale, 1) * 384) + image

    return estimate


class UpscaleModel:
    """UPSCALE_MODEL: a network that maps ``[B, C, H, W]`` images in 0..1 to ``[B, C, H*scale, W*scale]``.

    Like spandrel's ImageModelDescriptor (what ComfyUI passes): ``scale``, ``input_channels``,
    ``output_channels``, ``architecture``, ``model`` (the module) and a call on image tensors. An image whose
    sides are not multiples of what the network folds (Real-ESRGAN x2 / x1: 2 / 4) is padded on the bottom and
    right by reflection and the output cropped back.
    """

    def __init__(self, record: Loaded) -> None:
        self.source = record
        self.patcher: PatchedModel = record.patcher
        self.architecture: str = record.architecture
        config = record.module.config
        self.scale: int = config.scale
        self.input_channels: int = config.in_channels
        self.output_channels: int = config.out_channels
        self.multiple_of: int = getattr(config, "unshuffle", 1)

    @property
    def model(self) -> nn.Module:
        return self.patcher.module

    @property
    def device(self) -> torch.device:
        return self.patcher.load_device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def to(self, device: str | torch.device) -> UpscaleModel:
        """Spandrel's ``to``, which custom nodes call around ``comfy.utils.tiled_scale``: moving to the compute
        device makes the weights resident through the model manager; moving away leaves eviction to it."""
        from hearth.core.models import default_manager

        if torch.device(device).type == self.device.type:
            default_manager().load(self.patcher)
        return self

    def eval(self) -> UpscaleModel:
        return self

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        pad_h, pad_w = (-height) % self.multiple_of, (-width) % self.multiple_of
        x = images.to(self.device, torch.float32)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(height, width) > 1 else "replicate")
        with torch.no_grad():
            out = self.model(x)
        return out[..., :height * self.scale, :width * self.scale]

    def __repr__(self) -> str:
        return f"<UpscaleModel {self.architecture} x{self.scale} {self.patcher.name}>"


def load_upscale_model(path: str | Path) -> UpscaleModel:
    """Read ``path`` once (shared while any UPSCALE_MODEL from it lives) and wrap it for the model manager."""
    path = Path(path)

    def make() -> Loaded:
        module, name = build_module(read_state_dict(path), path)
        patcher = PatchedModel(module, name=path.name, memory_estimate=_memory_estimate(module.config.scale))
        return Loaded(path, module=module, patcher=patcher, architecture=name)

    return UpscaleModel(load_once("upscale_model", path, make))
