"""``comfy.ops``: the layer classes ComfyUI's models are built from, which packs reuse for their own networks.

Two families of the usual torch layers:

* ``disable_weight_init``: the layers skip their random initialisation (weights come from a file anyway, and
  initialising a big model at random is slow); otherwise they are torch's.
* ``manual_cast``: the same layers, casting their weights to the input's dtype and device at each call, so a
  model can keep fp16/bf16 (or offloaded) weights and compute in another dtype.

A layer casts when ``comfy_cast_weights`` is true or it carries ``weight_function`` / ``bias_function`` (a
function, or a list of them, applied to the cast weight: how ComfyUI applies weight patches on the fly).
``pick_operations`` chooses the family for a weight dtype and a compute dtype, as ComfyUI does; Hearth's own
models keep choosing their dtypes themselves. ``cast_bias_weight(..., offloadable=True)`` returns a third value
(ComfyUI's offload stream; always ``None`` here: Hearth casts synchronously) for ``uncast_bias_weight``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name


def cast_to(weight: torch.Tensor | None, dtype: torch.dtype | None = None, device: Any = None,
            non_blocking: bool = False, copy: bool = False, stream: Any = None) -> torch.Tensor | None:
    """``weight`` in ``dtype`` on ``device`` (either may be None: unchanged); a copy only when ``copy`` asks."""
    if weight is None:
        return None
    if (device is None or weight.device == torch.device(device)) and (dtype is None or weight.dtype == dtype):
        return weight.clone() if copy else weight
    return weight.to(device=device, dtype=dtype, non_blocking=non_blocking, copy=copy)


def cast_to_input(weight: torch.Tensor, input: torch.Tensor, non_blocking: bool = False,  # noqa: A002
                  copy: bool = True) -> torch.Tensor:
    """``weight`` in ``input``'s dtype and on its device."""
    return cast_to(weight, input.dtype, input.device, non_blocking=non_blocking, copy=copy)


def _apply(functions: Any, tensor: torch.Tensor) -> torch.Tensor:
    if functions is None:
        return tensor
    if callable(functions):
        return functions(tensor)
    for function in functions:
        tensor = function(tensor)
    return tensor


def cast_bias_weight(s: torch.nn.Module, input: torch.Tensor | None = None,  # noqa: A002
                     dtype: torch.dtype | None = None, device: Any = None, bias_dtype: torch.dtype | None = None,
                     offloadable: bool = False) -> tuple[Any, ...]:
    """The layer ``s``'s ``(weight, bias)`` cast to ``dtype``/``device`` (default: the input's), with its
    ``weight_function``/``bias_function`` applied; with ``offloadable`` a third value, the offload stream
    (``None``)."""
    if input is not None:
        dtype = input.dtype if dtype is None else dtype
        device = input.device if device is None else device
    bias_dtype = dtype if bias_dtype is None else bias_dtype
    bias = None
    if getattr(s, "bias", None) is not None:
        bias = _apply(getattr(s, "bias_function", None), cast_to(s.bias, bias_dtype, device))
    weight = _apply(getattr(s, "weight_function", None), cast_to(s.weight, dtype, device))
    return (weight, bias, None) if offloadable else (weight, bias)


def uncast_bias_weight(s: torch.nn.Module, weight: Any, bias: Any, offload_stream: Any) -> None:
    """Release what ``cast_bias_weight(..., offloadable=True)`` made: nothing to do, Hearth casts synchronously."""


class CastWeightBiasOp:
    """The flags every ``comfy.ops`` layer carries (see the module docstring)."""

    comfy_cast_weights = False
    weight_function: Any = []
    bias_function: Any = []

    def _casts(self) -> bool:
        return bool(self.comfy_cast_weights or self.weight_function or self.bias_function)


class _CastingLayer:
    """What every layer below shares: no random initialisation (the weights come from a file), and a forward that
    casts the weights (``forward_comfy_cast_weights``) only when asked, else is torch's own. First in each layer's
    bases, so it comes before torch's ``forward``."""

    def reset_parameters(self) -> None:
        return None

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._casts():  # type: ignore[attr-defined]
            return self.forward_comfy_cast_weights(*args, **kwargs)  # type: ignore[attr-defined]
        return super().forward(*args, **kwargs)  # type: ignore[misc]


def run_every_op() -> None:
    """ComfyUI's per-layer hook (an interrupt check); Hearth checks for interrupts between steps instead."""


class disable_weight_init:  # noqa: N801 - ComfyUI's name
    """torch layers without their random initialisation, casting their weights when asked (module docstring)."""

    class Linear(_CastingLayer, torch.nn.Linear, CastWeightBiasOp):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
            weight, bias = cast_bias_weight(self, input)
            return F.linear(input, weight, bias)

    class Conv1d(_CastingLayer, torch.nn.Conv1d, CastWeightBiasOp):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
            weight, bias = cast_bias_weight(self, input)
            return self._conv_forward(input, weight, bias)

    class Conv2d(_CastingLayer, torch.nn.Conv2d, CastWeightBiasOp):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
            weight, bias = cast_bias_weight(self, input)
            return self._conv_forward(input, weight, bias)

    class Conv3d(_CastingLayer, torch.nn.Conv3d, CastWeightBiasOp):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
            weight, bias = cast_bias_weight(self, input)
            return self._conv_forward(input, weight, bias)

    class GroupNorm(_CastingLayer, torch.nn.GroupNorm, CastWeightBiasOp):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
            weight, bias = cast_bias_weight(self, input) if self.weight is not None else (None, None)
            return F.group_norm(input, self.num_groups, weight, bias, self.eps)

    class LayerNorm(_CastingLayer, torch.nn.LayerNorm, CastWeightBiasOp):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
            weight, bias = cast_bias_weight(self, input) if self.weight is not None else (None, None)
            return F.layer_norm(input, self.normalized_shape, weight, bias, self.eps)

    class RMSNorm(_CastingLayer, torch.nn.RMSNorm, CastWeightBiasOp):
        def forward_comfy_cast_weights(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
            weight = cast_bias_weight(self, input)[0] if self.weight is not None else None
            return F.rms_norm(input, self.normalized_shape, weight, self.eps)

    class ConvTranspose2d(_CastingLayer, torch.nn.ConvTranspose2d, CastWeightBiasOp):
        def forward_comfy_cast_weights(self, input: torch.Tensor,  # noqa: A002
                                       output_size: list[int] | None = None) -> torch.Tensor:
            padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size,
                                           2, self.dilation)
            weight, bias = cast_bias_weight(self, input)
            return F.conv_transpose2d(input, weight, bias, self.stride, self.padding, padding, self.groups,
                                      self.dilation)

    class ConvTranspose1d(_CastingLayer, torch.nn.ConvTranspose1d, CastWeightBiasOp):
        def forward_comfy_cast_weights(self, input: torch.Tensor,  # noqa: A002
                                       output_size: list[int] | None = None) -> torch.Tensor:
            padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size,
                                           1, self.dilation)
            weight, bias = cast_bias_weight(self, input)
            return F.conv_transpose1d(input, weight, bias, self.stride, self.padding, padding, self.groups,
                                      self.dilation)

    class Embedding(_CastingLayer, torch.nn.Embedding, CastWeightBiasOp):
        def reset_parameters(self) -> None:
            self.bias = None
            return None

        def forward_comfy_cast_weights(self, input: torch.Tensor,  # noqa: A002
                                       out_dtype: torch.dtype | None = None) -> torch.Tensor:
            wanted = out_dtype
            if self.weight.dtype in (torch.float16, torch.bfloat16):
                out_dtype = None  # look up in the stored dtype, convert the (small) result only
            weight = cast_bias_weight(self, device=input.device, dtype=out_dtype)[0]
            found = F.embedding(input, weight, self.padding_idx, self.max_norm, self.norm_type,
                                self.scale_grad_by_freq, self.sparse)
            return found if wanted is None else found.to(dtype=wanted)

        def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
            if self._casts():
                return self.forward_comfy_cast_weights(*args, **kwargs)
            if "out_dtype" in kwargs:
                kwargs.pop("out_dtype")
            return super().forward(*args, **kwargs)

    @classmethod
    def conv_nd(cls, dims: int, *args: Any, **kwargs: Any) -> torch.nn.Module:
        """``Conv1d``/``Conv2d``/``Conv3d`` of this family by ``dims``."""
        layers = {1: cls.Conv1d, 2: cls.Conv2d, 3: cls.Conv3d}
        if dims not in layers:
            raise ValueError(f"unsupported dimensions: {dims} (1, 2 or 3)")
        return layers[dims](*args, **kwargs)


class manual_cast(disable_weight_init):  # noqa: N801 - ComfyUI's name
    """``disable_weight_init``'s layers, always casting their weights to the input's dtype and device."""

    class Linear(disable_weight_init.Linear):
        comfy_cast_weights = True

    class Conv1d(disable_weight_init.Conv1d):
        comfy_cast_weights = True

    class Conv2d(disable_weight_init.Conv2d):
        comfy_cast_weights = True

    class Conv3d(disable_weight_init.Conv3d):
        comfy_cast_weights = True

    class GroupNorm(disable_weight_init.GroupNorm):
        comfy_cast_weights = True

    class LayerNorm(disable_weight_init.LayerNorm):
        comfy_cast_weights = True

    class RMSNorm(disable_weight_init.RMSNorm):
        comfy_cast_weights = True

    class ConvTranspose2d(disable_weight_init.ConvTranspose2d):
        comfy_cast_weights = True

    class ConvTranspose1d(disable_weight_init.ConvTranspose1d):
        comfy_cast_weights = True

    class Embedding(disable_weight_init.Embedding):
        comfy_cast_weights = True


def pick_operations(weight_dtype: torch.dtype | None, compute_dtype: torch.dtype | None, load_device: Any = None,
                    disable_fast_fp8: bool = False, fp8_optimizations: bool = False, scaled_fp8: Any = None,
                    model_config: Any = None) -> type:
    """``disable_weight_init`` when weights are stored in the compute dtype (or none is given), else
    ``manual_cast``. ComfyUI's fp8 matmul and scaled-fp8 families are not offered: fp8 weights are cast too."""
    if compute_dtype is None or weight_dtype == compute_dtype:
        return disable_weight_init
    return manual_cast


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu, "silu": F.silu,
}


def linear_input_act(layer: torch.nn.Module, x: torch.Tensor, activation: str) -> torch.Tensor:
    """``layer`` applied to ``activation(x)``; ``"swiglu"`` splits ``x`` in two halves, ``silu(a) * b``."""
    if activation == "swiglu":
        a, b = x.chunk(2, dim=-1)
        return layer(F.silu(a) * b)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: Hearth's comfy.ops.linear_input_act takes swiglu, "
                         f"{', '.join(_ACTIVATIONS)}")
    return layer(_ACTIVATIONS[activation](x))
