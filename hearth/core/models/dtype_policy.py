"""The dtype policy: which dtype a loaded model's weights are held in when its device computes wider than the file.

A float16 checkpoint computes in float32 on a CPU (no fast half precision there). Its layers can cast each weight as
they run, which keeps the file's bytes but pays a cast of every weight on every call (half of a CPU UNet call's
time); or the weights can be cast once, when the manager loads the model, and held in float32, which costs twice
the bytes and gives bit-identical results (a float16 -> float32 cast is exact). The manager holds the compute
dtype whenever its budget has room for it, and the stored dtype, cast per call, only when memory is tight. Devices
with fast half precision compute in the stored dtype: nothing is cast, nothing changes.

Which models take part: a module that declares ``compute_dtype`` (an attribute, as ``hearth_sd.ops.cast_layers``
sets it) says its layers cast their weights to that dtype as they run, so its weights may be held in it. Only
half-precision weights (float16, bfloat16) are widened; fp8 weights, which a user chose to save memory, stay.

Patched weights (LoRA, merges) are computed in float32 and kept in the compute dtype on such a device whatever
the choice (:func:`patch_dtype`): rounding a patched weight back to float16 changes the image. The exception is a
module that says it rounds them (``patch_rounding_dtype``, :func:`settle_patch`): ComfyUI stores text encoders in
float16 on every device, so their patched weights are float16 values there, and the conditioning must match.

Held weights on a CPU live in transparent huge pages where Linux allows (``hearth/__init__.py`` sets PyTorch's
``THP_MEM_ALLOC_ENABLE``): a CPU UNet call reads every weight, and with 2 MB pages far fewer TLB misses (SD1.5 at
64x64: 0.94 s -> 0.68 s per call, the same floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hearth.core.models.devices import module_bytes, release_pages, supports_dtype

if TYPE_CHECKING:
    from hearth.core.models.patches import ModelWeights

HALF_DTYPES = (torch.float16, torch.bfloat16)
GB = 1000**3
MB = 1000**2
_SHORT = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32", torch.float64: "fp64"}


def size_label(nbytes: int) -> str:
    """``3.4 GB`` or, below a tenth of that, ``12.5 MB``: a size as the log line shows it (decimal units)."""
    return f"{nbytes / GB:.1f} GB" if nbytes >= GB // 10 else f"{nbytes / MB:.1f} MB"


def dtype_label(dtype: torch.dtype) -> str:
    """``fp16``, ``bf16``, ``fp32``: the names a user knows from file names and ComfyUI's options."""
    return _SHORT.get(dtype, str(dtype).removeprefix("torch."))


@dataclass(frozen=True)
class DtypeChoice:
    """What the manager chose for one model at load: the dtype its weights are held in, and why.

    ``room`` is the part of the device's budget that was left for this model's weights when the choice was made
    (the budget less the working memory and the other models that stay).
    """

    model: str
    device: str
    stored: torch.dtype
    compute: torch.dtype
    held: torch.dtype
    stored_bytes: int
    held_bytes: int
    room: int

    @property
    def cast_at_load(self) -> bool:
        return self.held == self.compute

    def describe(self) -> str:
        """The run log's line, e.g. ``unet: fp16 file -> held fp32 (cast at load, 3.4 GB)``."""
        stored, compute = dtype_label(self.stored), dtype_label(self.compute)
        if self.cast_at_load:
            return f"{self.model}: {stored} file -> held {compute} (cast at load, {size_label(self.held_bytes)})"
        return (f"{self.model}: {stored} file -> held {stored}, cast to {compute} per call "
                f"(budget {size_label(max(self.room, 0))} < {size_label(self.held_bytes)})")

    def as_dict(self) -> dict[str, Any]:
        """The entry ``/system_stats`` shows for this model (bytes as integers, dtypes by their short names)."""
        return {"model": self.model, "device": self.device, "stored_dtype": dtype_label(self.stored),
                "compute_dtype": dtype_label(self.compute), "held_dtype": dtype_label(self.held),
                "cast": "at load" if self.cast_at_load else "per call", "stored_bytes": self.stored_bytes,
                "held_bytes": self.held_bytes if self.cast_at_load else self.stored_bytes,
                "compute_dtype_bytes": self.held_bytes, "budget_bytes": max(self.room, 0),
                "summary": self.describe()}


def declared_compute_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype ``module`` says it computes in (its ``compute_dtype`` attribute), or None if it says nothing."""
    dtype = getattr(module, "compute_dtype", None)
    return dtype if isinstance(dtype, torch.dtype) else None


def _tensors(module: nn.Module):
    """``(key, holder, attribute, tensor)`` for every parameter and buffer, a tied one once (its first key)."""
    seen: set[int] = set()
    for path, sub in module.named_modules():
        for holder in (sub._parameters, sub._buffers):
            for attr, tensor in holder.items():
                if tensor is None or id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                yield (f"{path}.{attr}" if path else attr), holder, attr, tensor


def stored_dtype(module: nn.Module) -> torch.dtype | None:
    """The floating dtype that holds most of ``module``'s bytes (None for a module without floating tensors)."""
    totals: dict[torch.dtype, int] = {}
    for _, _, _, tensor in _tensors(module):
        if tensor.is_floating_point():
            totals[tensor.dtype] = totals.get(tensor.dtype, 0) + tensor.numel() * tensor.element_size()
    return max(totals, key=totals.__getitem__) if totals else None


def widening(module: nn.Module, device: torch.device) -> tuple[torch.dtype, torch.dtype] | None:
    """``(stored, compute)`` when ``module`` holds half-precision weights that ``device`` would rather compute
    wider (the policy applies), else None: no compute dtype declared, already stored in it, fp8, or a device with
    fast half precision."""
    compute = declared_compute_dtype(module)
    stored = stored_dtype(module)
    if compute is None or stored not in HALF_DTYPES or not compute.is_floating_point:
        return None
    if torch.finfo(compute).bits <= torch.finfo(stored).bits or supports_dtype(device, stored):
        return None
    return stored, compute


def held_bytes(module: nn.Module, dtype: torch.dtype) -> int:
    """Bytes of ``module``'s tensors with its half-precision ones held in ``dtype`` (the rest as they are)."""
    widen = torch.empty((), dtype=dtype).element_size()
    total = module_bytes(module)
    for _, _, _, tensor in _tensors(module):
        if tensor.dtype in HALF_DTYPES:
            total += tensor.numel() * (widen - tensor.element_size())
    return total


def settle_patch(weights: ModelWeights, original: torch.Tensor, patched: torch.Tensor) -> torch.Tensor:
    """``patched`` (computed in float32) as the model keeps it: first rounded to the module's declared
    ``patch_rounding_dtype`` if it has one (a text encoder that ComfyUI stores in float16 rounds its LoRA-patched
    weights to float16 as ComfyUI does), then in :func:`patch_dtype`."""
    rounding = getattr(weights.module, "patch_rounding_dtype", None)
    if isinstance(rounding, torch.dtype) and rounding != patched.dtype:
        patched = patched.to(dtype=rounding)
    return patched.to(dtype=patch_dtype(weights, original))


def patch_dtype(weights: ModelWeights, original: torch.Tensor) -> torch.dtype:
    """The dtype a patched weight is kept in: the model's compute dtype where its device computes wider than
    ``original`` is stored (a CPU), else ``original``'s own dtype (a GPU keeps patched float16 weights float16)."""
    compute = declared_compute_dtype(weights.module)
    if (compute is not None and original.dtype in HALF_DTYPES and compute.is_floating_point
            and torch.finfo(compute).bits > torch.finfo(original.dtype).bits
            and not supports_dtype(weights.load_device, original.dtype)):
        return compute
    return original.dtype


def hold(weights: ModelWeights, dtype: torch.dtype) -> None:
    """Cast the model's half-precision tensors to ``dtype`` and keep them so; :func:`release` undoes it.

    Patches come off first (their backups hold the stored originals) and go back on when the manager next loads
    the model, computed from the held weights. Each source tensor's file pages are handed back as soon as it is
    cast, so a memory-mapped checkpoint peaks at one tensor more than the held copy, not at the file plus the copy.
    """
    if weights.backup:
        weights.restore()
    found = [(key, tensor) for key, _, _, tensor in _tensors(weights.module) if tensor.dtype in HALF_DTYPES]
    weights.held_from.update((key, tensor.dtype) for key, tensor in found)
    _recast(weights, found, dtype)
    weights.nbytes = module_bytes(weights.module)


def release(weights: ModelWeights) -> None:
    """Give held tensors their stored dtype back (exact: they were widened from it), so the memory goes back."""
    if not weights.held_from:
        return
    if weights.backup:
        weights.restore(to_offload=True)
    by_dtype: dict[torch.dtype, list[tuple[str, torch.Tensor]]] = {}
    for key, stored in weights.held_from.items():
        by_dtype.setdefault(stored, []).append((key, weights.tensor(key)[2]))
    for stored, found in by_dtype.items():
        _recast(weights, found, stored)
    weights.held_from.clear()
    weights.nbytes = module_bytes(weights.module)


def align(weights: ModelWeights) -> int:
    """Copy the floating tensors a CPU computes from as they lie (those in the model's compute dtype, or all of
    a model that declares none) that a file mapping holds off a 64-byte boundary into one aligned block each
    dtype (same dtype, same values); returns how many moved. Tensors cast per call stay mapped: the cast's
    result is a fresh, aligned tensor anyway.

    safetensors packs tensors back to back, so most start wherever the previous one ended. CPU kernels take
    other code paths for such weights and round differently (1e-6 on a UNet call): the same weights read from an
    fp32 file and from memory did not give the same image. Aligned, they do, and match ComfyUI, whose weights
    are always copied into fresh allocations. The file pages go back as each tensor is copied, so resident
    memory stays what the mapping cost.
    """
    if weights.backup:
        weights.restore()
    compute = declared_compute_dtype(weights.module)
    by_dtype: dict[torch.dtype, list[tuple[str, torch.Tensor]]] = {}
    for key, _, _, tensor in _tensors(weights.module):
        if (tensor.is_floating_point() and compute in (None, tensor.dtype) and tensor.device.type == "cpu"
                and tensor.numel()
                and tensor.data_ptr() % _ALIGN_BYTES and not tensor.untyped_storage().resizable()):
            by_dtype.setdefault(tensor.dtype, []).append((key, tensor))
    for dtype, found in by_dtype.items():
        _recast(weights, found, dtype)
    return sum(len(found) for found in by_dtype.values())


_ALIGN = 64  # elements between tensors in one block: every tensor starts on a cache line, as malloc'd ones do
_ALIGN_BYTES = 64


def _recast(weights: ModelWeights, found: list[tuple[str, torch.Tensor]], dtype: torch.dtype) -> None:
    """Replace each ``(key, tensor)`` by a copy in ``dtype``, all of one device carved from one block.

    One block rather than a tensor each: a block that size is its own mapping, which goes back to the system the
    moment the last tensor of it is dropped. Hundreds of separate tensors would land in the C heap, where freed
    ones stay until someone trims it, and the order in which a dropped model's objects are freed decides whether
    anyone does.
    """
    for device in dict.fromkeys(tensor.device for _, tensor in found):
        here = [(key, tensor) for key, tensor in found if tensor.device == device]
        sizes = [-(-tensor.numel() // _ALIGN) * _ALIGN for _, tensor in here]
        block = torch.empty(sum(sizes), dtype=dtype, device=device)
        offset = 0
        for (key, tensor), size in zip(here, sizes, strict=True):
            source = tensor.data
            copy = block[offset:offset + source.numel()].view(source.shape)
            copy.copy_(source)
            weights.set_tensor(key, copy)
            release_pages(source)
            offset += size
