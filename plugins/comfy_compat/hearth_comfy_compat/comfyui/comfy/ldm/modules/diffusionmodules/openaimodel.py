"""ComfyUI's ``comfy.ldm.modules.diffusionmodules.openaimodel``: the SD UNet's building blocks, which packs reuse
and test for (BrushNet's and AnimateDiff's injected blocks), with ComfyUI's constructors and weight names.

Real here: :class:`ResBlock`, :class:`Downsample`, :class:`Upsample`, :class:`TimestepBlock`,
:class:`TimestepEmbedSequential`, :func:`forward_timestep_embed` and :func:`apply_control`. What differs: Hearth's
SD UNet is its SD plugin's own (``model.model.diffusion_model``), not ComfyUI's ``UNetModel``, which is absent here;
its blocks are not instances of these classes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

from hearth_comfy_compat.comfyui.comfy.ldm.modules.attention import SpatialTransformer, ops
from hearth_comfy_compat.comfyui.comfy.ldm.modules.diffusionmodules.util import (
    avg_pool_nd,
    timestep_embedding,
)

__all__ = ["Downsample", "ResBlock", "SpatialTransformer", "TimestepBlock", "TimestepEmbedSequential", "Upsample",
           "apply_control", "forward_timestep_embed", "timestep_embedding"]


def _conv(operations: Any, dims: int, *args: Any, **kwargs: Any) -> nn.Module:
    return {1: operations.Conv1d, 2: operations.Conv2d, 3: operations.Conv3d}[dims](*args, **kwargs)


class TimestepBlock(nn.Module):
    """A block whose forward takes the timestep embedding as its second argument."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def forward_timestep_embed(ts: nn.Module, x: torch.Tensor, emb: torch.Tensor, context: Any = None,
                           transformer_options: dict[str, Any] | None = None, output_shape: Any = None,
                           time_context: Any = None, num_video_frames: Any = None,
                           image_only_indicator: Any = None) -> torch.Tensor:
    """Run the layers of ``ts`` in order, giving each what it takes: the embedding to timestep blocks, the
    context to transformers, the skip's size to upsamplers."""
    for layer in ts:
        if isinstance(layer, TimestepBlock):
            x = layer(x, emb)
        elif isinstance(layer, SpatialTransformer):
            x = layer(x, context, transformer_options=transformer_options)
        elif isinstance(layer, Upsample):
            x = layer(x, output_shape=output_shape)
        else:
            x = layer(x)
    return x


class TimestepEmbedSequential(nn.Sequential, TimestepBlock):
    """A sequence of layers run by :func:`forward_timestep_embed`."""

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return forward_timestep_embed(self, *args, **kwargs)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling by 2 (to ``output_shape`` when given), then a 3x3 conv if ``use_conv``."""

    def __init__(self, channels: int, use_conv: bool, dims: int = 2, out_channels: int | None = None,
                 padding: int = 1, dtype: Any = None, device: Any = None, operations: Any = ops):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.dims = dims
        if use_conv:
            self.conv = _conv(operations, dims, channels, self.out_channels, 3, padding=padding, dtype=dtype,
                              device=device)

    def forward(self, x: torch.Tensor, output_shape: Any = None) -> torch.Tensor:
        if self.dims == 3:
            size = [x.shape[2], x.shape[3] * 2, x.shape[4] * 2]
            if output_shape is not None:
                size[1], size[2] = output_shape[3], output_shape[4]
        else:
            size = [x.shape[2] * 2, x.shape[3] * 2]
            if output_shape is not None:
                size = [output_shape[2], output_shape[3]]
        x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """Halving: a stride-2 3x3 conv (``op``) if ``use_conv``, else average pooling."""

    def __init__(self, channels: int, use_conv: bool, dims: int = 2, out_channels: int | None = None,
                 padding: int = 1, dtype: Any = None, device: Any = None, operations: Any = ops):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.dims = dims
        stride = 2 if dims != 3 else (1, 2, 2)
        if use_conv:
            self.op = _conv(operations, dims, channels, self.out_channels, 3, stride=stride, padding=padding,
                            dtype=dtype, device=device)
        else:
            if self.channels != self.out_channels:
                raise ValueError("Downsample without a conv keeps the channel count")
            self.op = avg_pool_nd(dims, kernel_size=stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ResBlock(TimestepBlock):
    """The UNet's residual block: ``in_layers`` (norm, SiLU, conv), the timestep embedding added (or applied as
    scale and shift), ``out_layers`` (norm, SiLU, dropout, conv), plus the skip connection."""

    def __init__(self, channels: int, emb_channels: int, dropout: float, out_channels: int | None = None,
                 use_conv: bool = False, use_scale_shift_norm: bool = False, dims: int = 2,
                 use_checkpoint: bool = False, up: bool = False, down: bool = False, kernel_size: Any = 3,
                 exchange_temb_dims: bool = False, skip_t_emb: bool = False, dtype: Any = None, device: Any = None,
                 operations: Any = ops):
        super().__init__()
        self.channels = channels
        self.emb_channels = emb_channels
        self.out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.exchange_temb_dims = exchange_temb_dims
        padding = kernel_size // 2 if isinstance(kernel_size, int) else [k // 2 for k in kernel_size]
        self.in_layers = nn.Sequential(
            operations.GroupNorm(32, channels, dtype=dtype, device=device), nn.SiLU(),
            _conv(operations, dims, channels, self.out_channels, kernel_size, padding=padding, dtype=dtype,
                  device=device))
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False, dims), Upsample(channels, False, dims)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False, dims), Downsample(channels, False, dims)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.skip_t_emb = skip_t_emb
        if skip_t_emb:
            self.emb_layers = None
            self.exchange_temb_dims = False
        else:
            width = 2 * self.out_channels if use_scale_shift_norm else self.out_channels
            self.emb_layers = nn.Sequential(nn.SiLU(), operations.Linear(emb_channels, width, dtype=dtype,
                                                                         device=device))
        self.out_layers = nn.Sequential(
            operations.GroupNorm(32, self.out_channels, dtype=dtype, device=device), nn.SiLU(), nn.Dropout(p=dropout),
            _conv(operations, dims, self.out_channels, self.out_channels, kernel_size, padding=padding, dtype=dtype,
                  device=device))
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        elif use_conv:
            self.skip_connection = _conv(operations, dims, channels, self.out_channels, kernel_size, padding=padding,
                                         dtype=dtype, device=device)
        else:
            self.skip_connection = _conv(operations, dims, channels, self.out_channels, 1, dtype=dtype,
                                         device=device)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        out_norm, out_rest = self.out_layers[0], self.out_layers[1:]
        if self.emb_layers is None:
            h = self.out_layers(h)
        else:
            emb_out = self.emb_layers(emb).type(h.dtype)
            while emb_out.ndim < h.ndim:
                emb_out = emb_out[..., None]
            if self.exchange_temb_dims:
                emb_out = emb_out.movedim(1, 2)
            if self.use_scale_shift_norm:
                scale, shift = emb_out.chunk(2, dim=1)
                h = out_rest(out_norm(h) * (1 + scale) + shift)
            else:
                h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


def apply_control(h: torch.Tensor, control: dict[str, list[Any]] | None, name: str) -> torch.Tensor:
    """Add the next control output for block group ``name`` (``input``, ``middle``, ``output``) to ``h``: the
    last of ``control[name]``, taken off the list."""
    if control is not None and control.get(name):
        addition = control[name].pop()
        if addition is not None:
            h = h + addition
    return h
