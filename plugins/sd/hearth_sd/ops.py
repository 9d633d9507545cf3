"""Layers that compute in a chosen dtype whatever their weights are stored in (cast as each layer runs).

A checkpoint stored in float16 keeps its weights in float16 (memory-mapped from the file, costing no copy) while
the CPU computes in float32: :func:`cast_layers` switches a module's Linear, Conv2d, GroupNorm and LayerNorm
layers to variants that cast their weights to the input's dtype on the fly. Casting float16 to float32 is exact,
so the results equal those of a model converted up front. This is the contract of ``hearth.core.models``: layers
cast whatever weights they find as they run. The ``compute_dtype`` attribute :func:`cast_layers` sets is also what
lets the model manager's dtype policy (``hearth.core.models.dtype_policy``) hold float16 weights in float32 while
loaded, when its budget has room: each cast is then a no-op and a CPU call takes half the time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cast_to(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if t is None else t.to(dtype=like.dtype)


class CastLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, cast_to(self.weight, x), cast_to(self.bias, x))


class CastConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, cast_to(self.weight, x), cast_to(self.bias, x))


class CastGroupNorm(nn.GroupNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_groups, cast_to(self.weight, x), cast_to(self.bias, x), self.eps)


class CastLayerNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, cast_to(self.weight, x), cast_to(self.bias, x), self.eps)


_CASTING = {nn.Linear: CastLinear, nn.Conv2d: CastConv2d, nn.GroupNorm: CastGroupNorm, nn.LayerNorm: CastLayerNorm}


def weights_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter (float32 for a module without any)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


def compute_dtype_of(module: nn.Module) -> torch.dtype:
    """The dtype a model computes in: the one :func:`cast_layers` set, else its weights' dtype."""
    return getattr(module, "compute_dtype", None) or weights_dtype(module)


def cast_layers(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Make ``module`` compute in ``dtype`` without converting its weights; returns the same module.

    The layers' classes change in place (same parameters, same ``state_dict``); the top-level model reads
    ``compute_dtype`` to cast its inputs and the few raw parameters it uses directly.
    """
    for layer in module.modules():
        casting = _CASTING.get(type(layer))
        if casting is not None:
            layer.__class__ = casting
    module.compute_dtype = dtype
    return module


def place(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Put a loaded model on ``device`` to compute in ``dtype``, copying weights only where that saves something.

    Weights stored wider than ``dtype`` (float32 weights, float16 compute) are converted: smaller, and no cast per
    forward. Weights stored narrower (float16 weights, float32 compute on a CPU) stay as they are and are cast
    layer by layer, so a memory-mapped checkpoint is not duplicated in RAM.
    """
    module = module.to(device)
    stored = weights_dtype(module)
    if stored == dtype:
        return module
    if torch.finfo(stored).bits > torch.finfo(dtype).bits:
        return module.to(dtype)
    return cast_layers(module, dtype)


# ComfyUI keeps every text encoder's weights in float16 (model_management.text_encoder_dtype) and runs it in
# float32 on a CPU (sd1_clip passes dtype=float32 to the transformer).
TEXT_STORAGE_DTYPE = torch.float16


def place_text_encoder(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """:func:`place` for a text encoder, with ComfyUI's storage rule where ``dtype`` is wider than float16 (a CPU).

    The weights are rounded to float16, a float32 file's included, and cast per layer; ``patch_rounding_dtype``
    tells the model manager to round a LoRA-patched weight back to float16 as well. The conditioning then equals
    ComfyUI's for the same file: a float32 SD1.5 checkpoint's CLIP run from its float32 weights gives a prompt
    embedding about 1e-3 away, which moves every pixel of the image. The model manager's dtype policy may still hold
    the rounded weights in float32 (exact), so the rule costs no speed.
    """
    if torch.finfo(dtype).bits <= torch.finfo(TEXT_STORAGE_DTYPE).bits:
        return place(module, device, dtype)
    module = cast_layers(module.to(device=device, dtype=TEXT_STORAGE_DTYPE), dtype)
    module.patch_rounding_dtype = TEXT_STORAGE_DTYPE
    return module
