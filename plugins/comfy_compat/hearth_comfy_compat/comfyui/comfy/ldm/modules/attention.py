"""ComfyUI's ``comfy.ldm.modules.attention``: the attention functions and transformer blocks packs build their own
networks from (AnimateDiff's motion modules, KJNodes' attention patches).

The attention functions share ComfyUI's signature ``(q, k, v, heads, mask=None, attn_precision=None,
skip_reshape=False, skip_output_reshape=False, **kwargs)``: ``q``/``k``/``v`` are ``[B, N, heads * dim]`` (with
``skip_reshape``: ``[B, heads, N, dim]``), the result ``[B, N, heads * dim]`` (with ``skip_output_reshape``:
``[B, heads, N, dim]``); ``mask`` is boolean (keep) or additive. In ComfyUI the variants are memory strategies for
one computation; here ``attention_basic`` computes it step by step (upcasting to float32 when asked) and the others
use torch's ``scaled_dot_product_attention``, which is what ``optimized_attention`` is. xformers, SageAttention
and flash-attn are not Hearth's: ``attention_xformers`` / ``attention_sage`` / ``attention_flash`` are absent, so a
pack probing for them sees they are missing.

The blocks (:class:`CrossAttention`, :class:`FeedForward`, :class:`BasicTransformerBlock`,
:class:`SpatialTransformer`) have ComfyUI's constructors and weight names (``to_q``, ``net.0.proj``,
``transformer_blocks.0.attn1``...), so state dicts written for ComfyUI load into them; they do not apply
``transformer_options`` patches (Hearth's own UNet applies those).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

from hearth_comfy_compat.comfyui.comfy import ops as comfy_ops
from hearth_comfy_compat.comfyui.comfy.ldm.modules.diffusionmodules.util import timestep_embedding

__all__ = ["BasicTransformerBlock", "CrossAttention", "FeedForward", "GEGLU", "Normalize", "SpatialTransformer",
           "attention_basic", "attention_pytorch", "attention_split", "attention_sub_quad", "default", "exists",
           "optimized_attention", "optimized_attention_for_device", "optimized_attention_masked", "timestep_embedding",
           "wrap_attn"]

ops = comfy_ops.disable_weight_init


def exists(val: Any) -> bool:
    return val is not None


def default(val: Any, d: Any) -> Any:
    return val if val is not None else d


def max_neg_value(t: torch.Tensor) -> float:
    return -torch.finfo(t.dtype).max


def get_attn_precision(attn_precision: torch.dtype | None, current_dtype: torch.dtype | None = None) -> Any:
    """The dtype attention scores are computed in: the one asked for (Hearth forces no upcast)."""
    return attn_precision


def wrap_attn(func: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Let ``transformer_options["optimized_attention_override"]`` replace an attention function for one call:
    the override gets ``(func, *args, **kwargs)``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> torch.Tensor:
        override = (kwargs.get("transformer_options") or {}).get("optimized_attention_override")
        if override is not None and not kwargs.get("_inside_attn_wrapper"):
            return override(func, *args, **{**kwargs, "_inside_attn_wrapper": True})
        return func(*args, **kwargs)

    return wrapper


def _heads_first(t: torch.Tensor, heads: int, skip_reshape: bool) -> torch.Tensor:
    if skip_reshape:
        return t
    b, n, inner = t.shape
    return t.view(b, n, heads, inner // heads).transpose(1, 2)


def _mask_for(mask: torch.Tensor | None, b: int, heads: int) -> torch.Tensor | None:
    """A mask broadcastable to ``[B, heads, Nq, Nk]``: a 2-D one applies to every batch and head, a 3-D one per
    batch entry."""
    if mask is None:
        return None
    if mask.ndim == 2:
        return mask[None, None]
    if mask.ndim == 3:
        return mask.reshape(mask.shape[0], 1, mask.shape[1], mask.shape[2]) if mask.shape[0] == b else \
            mask.reshape(-1, heads, mask.shape[1], mask.shape[2])
    return mask


def _out(out: torch.Tensor, skip_output_reshape: bool) -> torch.Tensor:
    if skip_output_reshape:
        return out
    b, heads, n, dim = out.shape
    return out.transpose(1, 2).reshape(b, n, heads * dim)


@wrap_attn
def attention_basic(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None = None,
                    attn_precision: torch.dtype | None = None, skip_reshape: bool = False,
                    skip_output_reshape: bool = False, **kwargs: Any) -> torch.Tensor:
    """Attention written out: ``softmax(q k^T / sqrt(dim) + mask) v``, scores in ``attn_precision`` if given."""
    q, k, v = (_heads_first(t, heads, skip_reshape) for t in (q, k, v))
    scale = q.shape[-1] ** -0.5
    if attn_precision == torch.float32:
        scores = (q.float() @ k.float().transpose(-1, -2)) * scale
    else:
        scores = (q @ k.transpose(-1, -2)) * scale
    mask = _mask_for(mask, q.shape[0], heads)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, max_neg_value(scores))
        else:
            scores = scores + mask
    out = scores.softmax(dim=-1).to(v.dtype) @ v
    return _out(out, skip_output_reshape)


@wrap_attn
def attention_pytorch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None = None,
                      attn_precision: torch.dtype | None = None, skip_reshape: bool = False,
                      skip_output_reshape: bool = False, **kwargs: Any) -> torch.Tensor:
    """Attention through torch's ``scaled_dot_product_attention``."""
    q, k, v = (_heads_first(t, heads, skip_reshape) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=_mask_for(mask, q.shape[0], heads), dropout_p=0.0,
                                         is_causal=False)
    return _out(out, skip_output_reshape)


# ComfyUI's memory strategies for the same computation; torch's kernel already works in slices where it must.
attention_split = attention_pytorch
attention_sub_quad = attention_pytorch
optimized_attention = attention_pytorch
optimized_attention_masked = attention_pytorch


def optimized_attention_for_device(device: Any = None, mask: bool = False, small_input: bool = False) -> Callable:
    """The attention function for ``device`` (here always :func:`attention_pytorch`)."""
    return attention_pytorch


def Normalize(in_channels: int, dtype: Any = None, device: Any = None) -> nn.GroupNorm:  # noqa: N802 - ComfyUI's name
    return nn.GroupNorm(num_groups=32, num_channels=in_channels, eps=1e-6, affine=True, dtype=dtype, device=device)


class GEGLU(nn.Module):
    """A linear layer to twice the width, one half gating the other through GELU."""

    def __init__(self, dim_in: int, dim_out: int, dtype: Any = None, device: Any = None, operations: Any = ops):
        super().__init__()
        self.proj = operations.Linear(dim_in, dim_out * 2, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    """``net``: project in (GELU or GEGLU), dropout, project out."""

    def __init__(self, dim: int, dim_out: int | None = None, mult: float = 4, glu: bool = False,
                 dropout: float = 0.0, dtype: Any = None, device: Any = None, operations: Any = ops):
        super().__init__()
        inner = int(dim * mult)
        project_in = GEGLU(dim, inner, dtype=dtype, device=device, operations=operations) if glu else nn.Sequential(
            operations.Linear(dim, inner, dtype=dtype, device=device), nn.GELU())
        self.net = nn.Sequential(project_in, nn.Dropout(dropout),
                                 operations.Linear(inner, default(dim_out, dim), dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossAttention(nn.Module):
    """Multi-head attention of ``x`` over ``context`` (itself when None): ``to_q``, ``to_k``, ``to_v``, ``to_out``."""

    def __init__(self, query_dim: int, context_dim: int | None = None, heads: int = 8, dim_head: int = 64,
                 dropout: float = 0.0, attn_precision: Any = None, dtype: Any = None, device: Any = None,
                 operations: Any = ops):
        super().__init__()
        inner = dim_head * heads
        context_dim = default(context_dim, query_dim)
        self.attn_precision = attn_precision
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = operations.Linear(query_dim, inner, bias=False, dtype=dtype, device=device)
        self.to_k = operations.Linear(context_dim, inner, bias=False, dtype=dtype, device=device)
        self.to_v = operations.Linear(context_dim, inner, bias=False, dtype=dtype, device=device)
        self.to_out = nn.Sequential(operations.Linear(inner, query_dim, dtype=dtype, device=device),
                                    nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, value: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, transformer_options: dict[str, Any] | None = None) -> torch.Tensor:
        q = self.to_q(x)
        context = default(context, x)
        k = self.to_k(context)
        v = self.to_v(value if value is not None else context)
        fn = optimized_attention_masked if mask is not None else optimized_attention
        out = fn(q, k, v, self.heads, mask, attn_precision=self.attn_precision,
                 transformer_options=transformer_options or {})
        return self.to_out(out)


class BasicTransformerBlock(nn.Module):
    """Self-attention, cross-attention and a GEGLU feed-forward, each after a LayerNorm and added back."""

    def __init__(self, dim: int, n_heads: int, d_head: int, dropout: float = 0.0, context_dim: int | None = None,
                 gated_ff: bool = True, checkpoint: bool = True, ff_in: bool = False, inner_dim: int | None = None,
                 disable_self_attn: bool = False, disable_temporal_crossattention: bool = False,
                 switch_temporal_ca_to_sa: bool = False, attn_precision: Any = None, dtype: Any = None,
                 device: Any = None, operations: Any = ops):
        super().__init__()
        self.ff_in = ff_in or inner_dim is not None
        inner_dim = default(inner_dim, dim)
        self.is_res = inner_dim == dim
        if self.ff_in:
            self.norm_in = operations.LayerNorm(dim, dtype=dtype, device=device)
            self.ff_in = FeedForward(dim, dim_out=inner_dim, dropout=dropout, glu=gated_ff, dtype=dtype,
                                     device=device, operations=operations)
        self.disable_self_attn = disable_self_attn
        self.attn1 = CrossAttention(inner_dim, context_dim if disable_self_attn else None, n_heads,
                                    d_head, dropout, attn_precision, dtype, device, operations)
        self.ff = FeedForward(inner_dim, dim_out=dim, dropout=dropout, glu=gated_ff, dtype=dtype, device=device,
                              operations=operations)
        if disable_temporal_crossattention:
            self.attn2 = None
        else:
            self.attn2 = CrossAttention(inner_dim, None if switch_temporal_ca_to_sa else context_dim, n_heads,
                                        d_head, dropout, attn_precision, dtype, device, operations)
            self.norm2 = operations.LayerNorm(inner_dim, dtype=dtype, device=device)
        self.norm1 = operations.LayerNorm(inner_dim, dtype=dtype, device=device)
        self.norm3 = operations.LayerNorm(inner_dim, dtype=dtype, device=device)
        self.n_heads, self.d_head = n_heads, d_head
        self.switch_temporal_ca_to_sa = switch_temporal_ca_to_sa

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                transformer_options: dict[str, Any] | None = None) -> torch.Tensor:
        options = transformer_options or {}
        if self.ff_in:
            skip = x
            x = self.ff_in(self.norm_in(x))
            if self.is_res:
                x = x + skip
        x = self.attn1(self.norm1(x), context if self.disable_self_attn else None, transformer_options=options) + x
        if self.attn2 is not None:
            ctx = None if self.switch_temporal_ca_to_sa else context
            x = self.attn2(self.norm2(x), ctx, transformer_options=options) + x
        skip = x
        x = self.ff(self.norm3(x))
        return x + skip if self.is_res else x


class SpatialTransformer(nn.Module):
    """Transformer blocks over an image's pixels: norm, ``proj_in`` (1x1 conv or linear), blocks, ``proj_out``,
    added to the input."""

    def __init__(self, in_channels: int, n_heads: int, d_head: int, depth: int = 1, dropout: float = 0.0,
                 context_dim: Any = None, disable_self_attn: bool = False, use_linear: bool = False,
                 use_checkpoint: bool = True, attn_precision: Any = None, dtype: Any = None, device: Any = None,
                 operations: Any = ops):
        super().__init__()
        if context_dim is not None and not isinstance(context_dim, list):
            context_dim = [context_dim] * depth
        self.in_channels = in_channels
        inner = n_heads * d_head
        self.norm = operations.GroupNorm(num_groups=32, num_channels=in_channels, eps=1e-6, affine=True, dtype=dtype,
                                         device=device)
        if use_linear:
            self.proj_in = operations.Linear(in_channels, inner, dtype=dtype, device=device)
            self.proj_out = operations.Linear(inner, in_channels, dtype=dtype, device=device)
        else:
            self.proj_in = operations.Conv2d(in_channels, inner, kernel_size=1, dtype=dtype, device=device)
            self.proj_out = operations.Conv2d(inner, in_channels, kernel_size=1, dtype=dtype, device=device)
        self.transformer_blocks = nn.ModuleList([
            BasicTransformerBlock(inner, n_heads, d_head, dropout=dropout,
                                  context_dim=None if context_dim is None else context_dim[d],
                                  disable_self_attn=disable_self_attn, checkpoint=use_checkpoint,
                                  attn_precision=attn_precision, dtype=dtype, device=device, operations=operations)
            for d in range(depth)])
        self.use_linear = use_linear

    def forward(self, x: torch.Tensor, context: Any = None,
                transformer_options: dict[str, Any] | None = None) -> torch.Tensor:
        if not isinstance(context, list):
            context = [context] * len(self.transformer_blocks)
        b, c, h, w = x.shape
        skip = x
        x = self.norm(x)
        if not self.use_linear:
            x = self.proj_in(x)
        x = x.movedim(1, 3).reshape(b, h * w, -1)
        if self.use_linear:
            x = self.proj_in(x)
        for i, block in enumerate(self.transformer_blocks):
            x = block(x, context=context[i], transformer_options=transformer_options)
        if self.use_linear:
            x = self.proj_out(x)
        x = x.reshape(b, h, w, -1).movedim(3, 1)
        if not self.use_linear:
            x = self.proj_out(x)
        return x + skip
