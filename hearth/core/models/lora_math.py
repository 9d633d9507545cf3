"""The arithmetic of LoRA-style weight patches, for every kind ComfyUI's patch dicts carry.

A patch is ``(kind, args)`` as ComfyUI's ``comfy.lora.load_lora`` writes it; :func:`apply_patch` puts one on a
weight with a strength. Kinds and their published definitions (``strength`` scales every delta):

* ``diff`` ``(delta[, {"pad_weight": bool}])``: ``W + s * delta``.
* ``set`` ``(weight,)``: the weight is replaced (strength is ignored, as in ComfyUI).
* ``lora`` ``(up, down, alpha, mid, dora_scale, reshape)``: ``W + s * alpha/rank * up @ down`` (Hu et al. 2021),
  rank = ``down``'s first dimension. ``mid`` (LoCon/LyCORIS conv LoRA) is a kernel between down and up;
  ``reshape`` a shape the weight is zero-padded to first.
* ``loha`` ``(w1a, w1b, alpha, w2a, w2b, t1, t2[, dora_scale])``: ``(w1a @ w1b) * (w2a @ w2b)`` (Hadamard
  product, LyCORIS LoHa), ``alpha / rank`` with rank = ``w1b``'s first dimension; ``t1``/``t2`` are Tucker cores.
* ``lokr`` ``(w1, w2, alpha, w1a, w1b, w2a, w2b, t2[, dora_scale])``: ``kron(w1, w2)`` (LyCORIS LoKr), each
  factor given whole or as a low-rank product; ``alpha / rank`` only when a factor was low-rank.
* ``glora`` ``(a1, a2, b1, b2, alpha[, dora_scale])``: ``W a1 a2 + b1 b2`` (GLoRA, Chavan et al. 2023), in
  LyCORIS' current orientation or its first one (told apart by the shapes).

Any low-rank kind with a ``dora_scale`` is DoRA (Liu et al. 2024): the patched weight is renormalised so each
input column has the norm ``dora_scale`` gives, then blended with the original by the strength.

Hearth's own code on torch alone; ``comfy.lora`` (the compat plugin) and ``ModelValue.add_patches`` both use it,
so the arithmetic exists once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

LOW_RANK_KINDS = ("lora", "loha", "lokr", "glora")
KINDS = ("diff", "set", *LOW_RANK_KINDS)

# The fewest entries each kind's args must have (the rest default to None).
_ARITY = {"diff": 1, "set": 1, "lora": 3, "loha": 7, "lokr": 8, "glora": 5}


def _identity(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _on(tensor: torch.Tensor, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(device=like.device, dtype=dtype)


def _arg(args: Sequence[Any], index: int) -> Any:
    return args[index] if len(args) > index else None


def check_patch(kind: str, args: Sequence[Any]) -> None:
    """Raise ValueError (naming the kind) when ``args`` cannot be a ``kind`` patch: an unknown kind, too few
    entries, or a tensor missing where the kind needs one. Cheap: no arithmetic is done."""
    if kind not in _ARITY:
        raise ValueError(f"unknown weight patch kind {kind!r}; known: {', '.join(KINDS)}")
    if not isinstance(args, (tuple, list)) or len(args) < _ARITY[kind]:
        raise ValueError(f"a {kind!r} patch needs at least {_ARITY[kind]} entries, got "
                         f"{len(args) if isinstance(args, (tuple, list)) else type(args).__name__}")
    needed = {"diff": (0,), "set": (0,), "lora": (0, 1), "loha": (0, 1, 3, 4), "glora": (0, 1, 2, 3)}.get(kind, ())
    if kind == "lokr":
        if not (isinstance(args[0], torch.Tensor) or isinstance(args[3], torch.Tensor)) \
                or not (isinstance(args[1], torch.Tensor) or isinstance(args[5], torch.Tensor)):
            raise ValueError("a 'lokr' patch needs w1 (or w1_a, w1_b) and w2 (or w2_a, w2_b)")
    for index in needed:
        if not isinstance(args[index], torch.Tensor):
            raise ValueError(f"a {kind!r} patch needs a tensor at entry {index}, got {type(args[index]).__name__}")


def pad_tensor_to_shape(tensor: torch.Tensor, new_shape: Sequence[int]) -> torch.Tensor:
    """``tensor`` in the leading corner of a zero tensor of ``new_shape`` (as large or larger in every dimension,
    same number of dimensions)."""
    if len(new_shape) != tensor.ndim:
        raise ValueError("The new shape must have the same number of dimensions as the original tensor")
    if any(size < have for size, have in zip(new_shape, tensor.shape, strict=True)):
        raise ValueError("The new shape must be larger than the original tensor in all dimensions")
    padded = tensor.new_zeros(tuple(new_shape))
    padded[tuple(slice(0, n) for n in tensor.shape)] = tensor
    return padded


def weight_decompose(dora_scale: torch.Tensor, weight: torch.Tensor, lora_diff: torch.Tensor, alpha: float,
                     strength: float, intermediate_dtype: torch.dtype,
                     function: Callable[[torch.Tensor], torch.Tensor] = _identity) -> torch.Tensor:
    """DoRA: ``weight + alpha * diff`` rescaled so each input column's norm is ``dora_scale``, then blended with
    ``weight`` by ``strength``. Changes ``weight`` in place and returns it."""
    scale = _on(dora_scale, weight, intermediate_dtype)
    combined = weight + function(lora_diff * alpha).to(weight.dtype)
    # The norm over every dimension but the input channels (dimension 1), kept broadcastable.
    columns = combined.transpose(0, 1).reshape(combined.shape[1], -1).norm(dim=1, keepdim=True)
    norm = columns.reshape(combined.shape[1], *[1] * (combined.ndim - 1)).transpose(0, 1)
    combined = combined * (scale / norm).to(weight.dtype)
    if strength != 1.0:
        weight += strength * (combined - weight)
    else:
        weight[:] = combined
    return weight


def _tucker(core: torch.Tensor, wb: torch.Tensor, wa: torch.Tensor) -> torch.Tensor:
    # A Tucker-decomposed conv factor: core's first two dimensions mapped by wa (out) and wb (in).
    return torch.einsum("ijkl,jr,ip->prkl", core, wb, wa)


def low_rank_diff(kind: str, args: Sequence[Any], weight: torch.Tensor,
                  dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, float, Any]:
    """``(delta shaped like weight, alpha scale, dora_scale or None)`` of a ``lora`` / ``loha`` / ``lokr`` /
    ``glora`` patch, computed in ``dtype`` on ``weight``'s device."""
    if kind == "lora":
        up, down = _on(args[0], weight, dtype), _on(args[1], weight, dtype)
        mid = _arg(args, 3)
        alpha = 1.0 if args[2] is None else float(args[2]) / down.shape[0]
        if mid is not None:  # LoCon: the mid kernel between down and up
            mid = _on(mid, weight, dtype)
            shape = [down.shape[1], down.shape[0], mid.shape[2], mid.shape[3]]
            down = torch.mm(down.transpose(0, 1).flatten(1), mid.transpose(0, 1).flatten(1)).reshape(shape)
            down = down.transpose(0, 1)
        diff = torch.mm(up.flatten(1), down.flatten(1)).reshape(weight.shape)
        return diff, alpha, _arg(args, 4)
    if kind == "lokr":
        w1, w2, alpha_v, w1a, w1b, w2a, w2b, t2 = args[:8]
        rank = None
        if w1 is None:
            rank = w1b.shape[0]
            w1 = torch.mm(_on(w1a, weight, dtype), _on(w1b, weight, dtype))
        else:
            w1 = _on(w1, weight, dtype)
        if w2 is None:
            rank = w2b.shape[0]
            if t2 is None:
                w2 = torch.mm(_on(w2a, weight, dtype), _on(w2b, weight, dtype))
            else:
                w2 = _tucker(_on(t2, weight, dtype), _on(w2b, weight, dtype), _on(w2a, weight, dtype))
        else:
            w2 = _on(w2, weight, dtype)
        if w2.ndim == 4:
            w1 = w1[:, :, None, None]
        alpha = float(alpha_v) / rank if alpha_v is not None and rank is not None else 1.0
        return torch.kron(w1, w2).reshape(weight.shape), alpha, _arg(args, 8)
    if kind == "loha":
        w1a, w1b, alpha_v, w2a, w2b, t1, t2 = args[:7]
        alpha = 1.0 if alpha_v is None else float(alpha_v) / w1b.shape[0]
        if t1 is not None:  # Tucker (CP) decomposed conv factors
            m1 = _tucker(_on(t1, weight, dtype), _on(w1b, weight, dtype), _on(w1a, weight, dtype))
            m2 = _tucker(_on(t2, weight, dtype), _on(w2b, weight, dtype), _on(w2a, weight, dtype))
        else:
            m1 = torch.mm(_on(w1a, weight, dtype), _on(w1b, weight, dtype))
            m2 = torch.mm(_on(w2a, weight, dtype), _on(w2b, weight, dtype))
        return (m1 * m2).reshape(weight.shape), alpha, _arg(args, 7)
    if kind != "glora":
        raise ValueError(f"{kind!r} is not a low-rank patch kind ({', '.join(LOW_RANK_KINDS)})")
    # glora: W' = W + (W a1) a2 + b1 b2 (LyCORIS' current form; its first form multiplied the other way round).
    a1, a2, b1, b2 = (_on(t.flatten(1), weight, dtype) for t in args[:4])
    old = args[3].shape[1] == args[2].shape[0] == args[0].shape[0] == args[1].shape[1]
    rank = args[0].shape[0]
    if args[3].shape[0] == args[2].shape[1] == args[0].shape[1] == args[1].shape[0] and not (
            old and args[1].shape[0] == weight.shape[0] == weight.shape[1]):
        old, rank = False, args[1].shape[0]
    alpha = 1.0 if args[4] is None else float(args[4]) / rank
    w = weight.to(dtype)
    if old:
        diff = (torch.mm(b2, b1) + torch.mm(torch.mm(w.flatten(1), a2), a1)).reshape(weight.shape)
    else:
        inner = torch.einsum("oi...,ij->oj...", torch.einsum("oi...,ij->oj...", w, a1), a2) if w.ndim > 2 \
            else torch.mm(torch.mm(w, a1), a2)
        diff = inner.reshape(weight.shape) + torch.mm(b1, b2).reshape(weight.shape)
    return diff, alpha, _arg(args, 5)


def apply_patch(kind: str, args: Sequence[Any], weight: torch.Tensor, strength: float,
                intermediate_dtype: torch.dtype = torch.float32,
                function: Callable[[torch.Tensor], torch.Tensor] = _identity) -> torch.Tensor:
    """``weight`` with one ``(kind, args)`` patch at ``strength``; changed in place where the shape allows, and
    returned (a ``reshape`` or ``pad_weight`` patch returns a larger tensor). ``function`` maps the delta (ComfyUI's
    patch function slot). Raises ValueError when the patch's delta does not fit the weight."""
    check_patch(kind, args)
    if kind == "diff":
        diff = args[0]
        options = _arg(args, 1)
        if isinstance(options, Mapping) and options.get("pad_weight") and diff.shape != weight.shape:
            weight = pad_tensor_to_shape(weight, diff.shape)
        if strength == 0.0:
            return weight
        if diff.shape != weight.shape:
            raise ValueError(f"a 'diff' patch of shape {tuple(diff.shape)} does not fit a weight of shape "
                             f"{tuple(weight.shape)}")
        weight += function(strength * diff.to(weight.device, weight.dtype))
        return weight
    if kind == "set":
        replacement = args[0].to(weight.device, weight.dtype)
        if replacement.numel() != weight.numel():
            raise ValueError(f"a 'set' patch of shape {tuple(replacement.shape)} does not fit a weight of shape "
                             f"{tuple(weight.shape)}")
        weight.copy_(replacement.reshape(weight.shape))
        return weight
    if kind == "lora" and _arg(args, 5) is not None:
        weight = pad_tensor_to_shape(weight, list(args[5]))
    try:
        diff, alpha, dora_scale = low_rank_diff(kind, args, weight, intermediate_dtype)
    except RuntimeError as exc:  # shapes torch cannot multiply or reshape
        raise ValueError(f"a {kind!r} patch does not fit a weight of shape {tuple(weight.shape)}: {exc}") from exc
    if dora_scale is not None:
        return weight_decompose(dora_scale, weight, diff, alpha, strength, intermediate_dtype, function)
    weight += function((strength * alpha * diff).to(weight.dtype))
    return weight
