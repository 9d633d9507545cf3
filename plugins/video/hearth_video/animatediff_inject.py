"""Running an SD1 UNet with a motion model: forward hooks at AnimateDiff's places, active only inside one call.

The SD plugin's UNet has the original LDM layout (``input_blocks``, ``middle_block``, ``output_blocks``) and
knows nothing of video. AnimateDiff adds a temporal transformer after the last spatial layer of each down and up
step (a ResBlock, or the SpatialTransformer behind it) and, in v2, after the middle block's SpatialTransformer.
Here each of those layers gets a forward hook that passes its output through the matching motion module.

The UNet module is shared by every MODEL value made from one checkpoint, so the hooks do nothing unless
:func:`motion_enabled` is active for that very UNet on this thread of execution (a ``ContextVar``): a plain
KSampler on the same checkpoint, running before, after or between, sees the UNet it always saw. Hooks are
registered once per UNet and live as long as it does; they hold no reference to a motion model.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .animatediff_module import MotionModel

Site = tuple[str, int, int]  # ("down" | "up", block, index) or ("mid", 0, 0)


@dataclass(frozen=True)
class Active:
    unet: nn.Module
    motion: MotionModel
    frames: int
    norm: str
    scale: float


_active: ContextVar[Active | None] = ContextVar("hearth_video_active_motion", default=None)
_hooked: weakref.WeakKeyDictionary[nn.Module, dict[Site, nn.Module]] = weakref.WeakKeyDictionary()
_hooking = threading.Lock()


class MotionModelMismatch(ValueError):
    """A motion model does not fit a UNet; the message names both shapes and what to use instead."""


def _unet_shape(unet: nn.Module) -> Any:
    config = getattr(unet, "config", None)
    needed = ("channel_mult", "model_channels", "num_res_blocks", "transformer_depth")
    if config is None or not all(hasattr(config, name) for name in needed) or not hasattr(unet, "output_blocks"):
        raise MotionModelMismatch(f"AnimateDiff needs an SD UNet (input_blocks/middle_block/output_blocks); got a "
                                  f"{type(unet).__name__}")
    return config


def injection_sites(unet: nn.Module) -> dict[Site, nn.Module]:
    """The UNet layer whose output each motion module transforms, by site (diffusers' block numbering)."""
    c = _unet_shape(unet)
    sites: dict[Site, nn.Module] = {}
    k = 1
    levels = len(c.channel_mult)
    for level in range(levels):
        for j in range(c.num_res_blocks):
            sites[("down", level, j)] = unet.input_blocks[k][-1]
            k += 1
        if level != levels - 1:
            k += 1  # the downsampling block has no motion module
    middle = unet.middle_block
    if len(middle) == 3:
        sites[("mid", 0, 0)] = middle[1]
    k = 0
    for u, level in enumerate(reversed(range(levels))):
        for j in range(c.num_res_blocks + 1):
            # After the ResBlock and its attention, before the upsampler.
            sites[("up", u, j)] = unet.output_blocks[k][1 if c.transformer_depth[level] else 0]
            k += 1
    return sites


def check_fits(motion: MotionModel, unet: nn.Module, name: str = "motion model") -> None:
    """Raise :class:`MotionModelMismatch` unless every module of ``motion`` has a site of matching width."""
    c = _unet_shape(unet)
    unet_channels = tuple(c.model_channels * m for m in c.channel_mult)
    config = motion.config
    problem = None
    if config.channels != unet_channels:
        problem = f"its blocks have {'/'.join(map(str, config.channels))} channels"
    elif any(len(b) != c.num_res_blocks for b in config.down) or any(len(b) != c.num_res_blocks + 1
                                                                     for b in config.up):
        problem = "its blocks hold another number of modules than the UNet has layers"
    elif config.mid is not None and len(unet.middle_block) != 3:
        problem = "it has a middle module and the UNet's middle block has no attention"
    if problem:
        raise MotionModelMismatch(
            f"{name} ({config.describe()}) does not fit this UNet ({'/'.join(map(str, unet_channels))} channels): "
            f"{problem}; use an SD1.x motion model with an SD1.x checkpoint (the tiny checkpoint takes the tiny "
            f"motion model of `comfy models make-tiny animatediff`)")


def _hook(unet_ref: weakref.ref, site: Site):
    def run(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        active = _active.get()
        if active is None or active.unet is not unet_ref():
            return None
        if site[0] == "mid" and active.motion.mid_block is None:
            return None
        return active.motion.site(*site)(output, active.frames, active.norm, active.scale)

    return run


def install_hooks(unet: nn.Module) -> None:
    """Hook every site of ``unet`` once (idempotent; the hooks are inert outside :func:`motion_enabled`)."""
    with _hooking:  # two samplers starting at once must not hook one UNet twice
        if unet in _hooked:
            return
        sites = injection_sites(unet)
        ref = weakref.ref(unet)
        for site, layer in sites.items():
            layer.register_forward_hook(_hook(ref, site))
        _hooked[unet] = sites


@contextlib.contextmanager
def motion_enabled(unet: nn.Module, motion: MotionModel, frames: int, *, norm: str = "frame",
                   scale: float = 1.0) -> Iterator[None]:
    """Inside this block, forwards of ``unet`` treat their batch as clips of ``frames`` frames and run ``motion``.

    The batch must be a multiple of ``frames``; each run of ``frames`` consecutive items is one clip.
    """
    if frames > motion.config.max_frames:
        raise ValueError(f"the motion model takes at most {motion.config.max_frames} frames at once, got {frames}: "
                         f"add AnimateDiffContextOptions with a context_length of {motion.config.max_frames} or less")
    install_hooks(unet)
    token = _active.set(Active(unet, motion, frames, norm, scale))
    try:
        yield
    finally:
        _active.reset(token)
