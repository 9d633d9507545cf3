"""The latent-diffusion UNet of SD1.x, SD2.x and SDXL, with parameter names in the original LDM checkpoint layout.

The module tree mirrors ``model.diffusion_model.*`` of a real checkpoint (``input_blocks.N.M``, ``middle_block``,
``output_blocks``, ``time_embed``, ``label_emb``) so a checkpoint section loads with a plain ``load_state_dict``.
Attention is :mod:`hearth.core.models.attention`'s: ComfyUI's kernels on a CPU, ``scaled_dot_product_attention`` elsewhere.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.attention import unet_attention

from .ops import compute_dtype_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UNetConfig:
    """Shape of a UNet. ``transformer_depth[level] == 0`` means that level has no attention.

    Attention heads are set either by count (``num_heads``, SD1: the width per head grows with the level) or by
    width (``num_head_channels``, SD2/SDXL: the count grows with the level); exactly one of them is used.
    """

    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    transformer_depth: tuple[int, ...] = (1, 1, 1, 0)
    transformer_depth_middle: int = 1
    context_dim: int = 768
    num_heads: int | None = 8
    num_head_channels: int | None = None
    use_linear_in_transformer: bool = False
    adm_in_channels: int | None = None

    def heads_for(self, channels: int) -> tuple[int, int]:
        """(number of heads, width of a head) for an attention layer of ``channels`` channels."""
        if self.num_head_channels:
            if channels % self.num_head_channels:
                raise ValueError(f"{channels} channels do not split into heads of {self.num_head_channels}")
            return channels // self.num_head_channels, self.num_head_channels
        if not self.num_heads or channels % self.num_heads:
            raise ValueError(f"{channels} channels do not split into {self.num_heads} heads")
        return self.num_heads, channels // self.num_heads


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``[cos(t f_i), sin(t f_i)]`` of a batch of (possibly fractional) timesteps, in fp32."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    )
    args = timesteps.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def _norm(channels: int, eps: float = 1e-5) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=eps)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with the timestep embedding added in between, and a residual path."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int):
        super().__init__()
        # Index gaps (in_layers.1 = SiLU, out_layers.2 = dropout) keep the checkpoint's numbering.
        self.in_layers = nn.Sequential(_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            _norm(out_channels), nn.SiLU(), nn.Identity(), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        self.skip_connection = (
            nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        # In-place adds onto fresh layer outputs (never needed by autograd): no new activation-sized buffers.
        h += self.emb_layers(emb)[:, :, None, None]
        h = self.out_layers(h)
        return h.add_(self.skip_connection(x))


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``context`` is None, cross-attention to the text otherwise."""

    def __init__(self, query_dim: int, context_dim: int, heads: int, head_dim: int):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim)])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        out = unet_attention(self.to_q(x), self.to_k(context), self.to_v(context), self.heads)
        return self.to_out[0](out)


class GEGLU(nn.Module):
    """Gated GELU: half of the projection gates the other half."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        # net.1 is dropout in the original; Identity keeps net.2's index.
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int):
        super().__init__()
        self.attn1 = Attention(dim, dim, heads, head_dim)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(dim, context_dim, heads, head_dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x)).add_(x)
        x = self.attn2(self.norm2(x), context).add_(x)
        return self.ff(self.norm3(x)).add_(x)


class SpatialTransformer(nn.Module):
    """Transformer over the pixels of a feature map; SD1 projects in and out with 1x1 convs, SD2/SDXL with linears."""

    def __init__(self, channels: int, heads: int, head_dim: int, depth: int, context_dim: int, linear: bool):
        super().__init__()
        inner = heads * head_dim
        self.linear = linear
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner) if linear else nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner, heads, head_dim, context_dim) for _ in range(depth)
        )
        self.proj_out = nn.Linear(inner, channels) if linear else nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        residual = x
        x = self.norm(x)
        if not self.linear:
            x = self.proj_in(x)
        # Contiguous, as ComfyUI makes it: the permuted view is a transposed matrix, and SDXL's linear proj_in
        # multiplies it with another GEMM path that rounds differently (2e-7 at the first transformer, 6e-6 out).
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, -1).contiguous()
        if self.linear:
            x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, context)
        if self.linear:
            x = self.proj_out(x)
        x = x.reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
        if not self.linear:
            x = self.proj_out(x)
        # Not in place: at a 1x1 map (the middle block of a 64px latent) proj_out's output has channels-last
        # strides, which an in-place add keeps, and the next GroupNorm's CPU kernel for that layout rounds
        # differently (5e-7) from ComfyUI's, whose sum takes the residual's standard layout.
        return x + residual


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        # Upsample to the skip connection's size so odd latent sizes (e.g. 65x65) still line up.
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x)


class TimestepBlock(nn.Sequential):
    """A sequence of layers, each given what it needs: the embedding (ResBlock) or the text (SpatialTransformer)."""

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        emb: torch.Tensor,
        context: torch.Tensor,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif isinstance(layer, Upsample):
                x = layer(x, size)
            else:
                x = layer(x)
        return x


def spatial_transformer(c: UNetConfig, channels: int, depth: int) -> SpatialTransformer:
    """The attention stack of a UNet (or ControlNet) level of ``channels`` channels, with ``c``'s heads."""
    heads, head_dim = c.heads_for(channels)
    return SpatialTransformer(channels, heads, head_dim, depth, c.context_dim, c.use_linear_in_transformer)


def time_embedding_layers(c: UNetConfig) -> tuple[nn.Sequential, nn.Sequential | None]:
    """``time_embed`` and, for a model with an ADM vector (SDXL), ``label_emb``; both map to ``4 * model_channels``."""
    ch, time_dim = c.model_channels, c.model_channels * 4
    time_embed = nn.Sequential(nn.Linear(ch, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
    if not c.adm_in_channels:
        return time_embed, None
    return time_embed, nn.Sequential(
        nn.Sequential(nn.Linear(c.adm_in_channels, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
    )


def encoder_blocks(c: UNetConfig) -> Iterator[tuple[TimestepBlock, int]]:
    """The ``input_blocks`` of the encoder half, one at a time, each with the channels it puts out (the UNet keeps
    those as skip connections, a ControlNet puts a zero convolution of that width after each block).

    Built lazily, so a ControlNet creates each zero convolution right after its block, as LDM does: the order in
    which random weights are drawn, and so a seeded tiny ControlNet's weights, stay LDM's.
    """
    ch, time_dim = c.model_channels, c.model_channels * 4
    yield TimestepBlock(nn.Conv2d(c.in_channels, ch, 3, padding=1)), ch
    cur = ch
    last_level = len(c.channel_mult) - 1
    for level, mult in enumerate(c.channel_mult):
        for _ in range(c.num_res_blocks):
            layers: list[nn.Module] = [ResBlock(cur, time_dim, mult * ch)]
            cur = mult * ch
            if c.transformer_depth[level]:
                layers.append(spatial_transformer(c, cur, c.transformer_depth[level]))
            yield TimestepBlock(*layers), cur
        if level != last_level:
            yield TimestepBlock(Downsample(cur)), cur


def middle_block(c: UNetConfig, channels: int) -> TimestepBlock:
    """ResBlock, attention (where ``transformer_depth_middle``), ResBlock at the bottom of the UNet."""
    time_dim = c.model_channels * 4
    middle: list[nn.Module] = [ResBlock(channels, time_dim, channels)]
    if c.transformer_depth_middle:
        middle.append(spatial_transformer(c, channels, c.transformer_depth_middle))
    middle.append(ResBlock(channels, time_dim, channels))
    return TimestepBlock(*middle)


class ControlResiduals:
    """The residuals a ControlNet / T2I-Adapter chain hands one UNet evaluation: ComfyUI's control dict
    ``{"input": [...], "middle": [...], "output": [...]}``, consumed as ComfyUI's ``apply_control`` does.

    Each list is used from its end: the first input block takes the last ``"input"`` entry, the first output
    block the last ``"output"`` entry (the deepest skip), the middle block the last ``"middle"`` one. A ``None``
    entry adds nothing; a residual whose shape does not fit is skipped with a warning, as ComfyUI does (a
    T2I-Adapter on a size that is not a multiple of 64 gives such residuals for some blocks).
    """

    def __init__(self, control: Mapping[str, Sequence[torch.Tensor | None]] | None) -> None:
        self._lists = {name: list(control.get(name) or ()) for name in ("input", "middle", "output")} \
            if control else {}

    def __bool__(self) -> bool:
        return any(self._lists.values())

    def apply(self, h: torch.Tensor, name: str) -> torch.Tensor:
        """``h`` plus the next residual for ``name`` (``"input"``, ``"middle"``, ``"output"``), if any."""
        entries = self._lists.get(name)
        if not entries:
            return h
        residual = entries.pop()
        if residual is None:
            return h
        if residual.shape[1:] != h.shape[1:] or residual.shape[0] not in (1, h.shape[0]):
            log.warning("control residual %s does not fit the UNet's %s features %s; skipped",
                        list(residual.shape), name, list(h.shape))
            return h
        return h + residual.to(h.dtype)


class UNetModel(nn.Module):
    """The denoising UNet: ``forward(x, timesteps, context, y=None)`` returns the eps (or v) prediction.

    ``context`` is the text conditioning ``[B, tokens, context_dim]``; ``y`` is SDXL's ADM vector
    ``[B, adm_in_channels]`` (pooled text plus size/crop embeddings, see :mod:`hearth_sd.sdxl_conditioning`).
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        c = self.config = config
        if len(c.transformer_depth) != len(c.channel_mult):
            raise ValueError("transformer_depth needs one entry per channel_mult level")
        ch = c.model_channels
        time_dim = ch * 4
        self.time_embed, label_emb = time_embedding_layers(c)
        if label_emb is not None:
            self.label_emb = label_emb

        self.input_blocks = nn.ModuleList()
        skip_channels = []
        for block, channels in encoder_blocks(c):
            self.input_blocks.append(block)
            skip_channels.append(channels)
        cur = skip_channels[-1]
        self.middle_block = middle_block(c, cur)

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(c.channel_mult))):
            for i in range(c.num_res_blocks + 1):
                layers = [ResBlock(cur + skip_channels.pop(), time_dim, mult * ch)]
                cur = mult * ch
                if c.transformer_depth[level]:
                    layers.append(spatial_transformer(c, cur, c.transformer_depth[level]))
                if level and i == c.num_res_blocks:
                    layers.append(Upsample(cur))
                self.output_blocks.append(TimestepBlock(*layers))

        self.out = nn.Sequential(_norm(cur), nn.SiLU(), nn.Conv2d(cur, c.out_channels, 3, padding=1))

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        y: torch.Tensor | None = None,
        control: Mapping[str, Sequence[torch.Tensor | None]] | None = None,
    ) -> torch.Tensor:
        """``control``: ComfyUI's control dict (see :class:`ControlResiduals`), added to the input blocks' outputs
        (T2I-Adapter), the middle block's output and the skip connections (ControlNet), where ComfyUI adds them."""
        c = self.config
        if (y is None) != (c.adm_in_channels is None):
            raise ValueError("y (the ADM vector) is required exactly when the UNet has adm_in_channels")
        dtype = compute_dtype_of(self)
        if timesteps.ndim == 0:
            timesteps = timesteps[None]
        t_emb = timestep_embedding(timesteps.expand(x.shape[0]), c.model_channels).to(dtype)
        emb = self.time_embed(t_emb)
        if y is not None:
            emb = emb + self.label_emb(y.to(dtype))
        context = context.to(dtype)

        residuals = ControlResiduals(control)
        h = x.to(dtype)
        skips = []
        for block in self.input_blocks:
            h = residuals.apply(block(h, emb, context), "input")
            skips.append(h)
        h = residuals.apply(self.middle_block(h, emb, context), "middle")
        for block in self.output_blocks:
            h = torch.cat([h, residuals.apply(skips.pop(), "output")], dim=1)
            size = skips[-1].shape[-2:] if skips else None
            h = block(h, emb, context, size)
        return self.out(h).to(x.dtype)
