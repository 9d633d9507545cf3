"""Weight patches: cheap clones of a model that share its base weights and differ by patches applied on load.

A :class:`PatchedModel` is what nodes pass around (``MODEL``, ``CLIP``...). Cloning one copies a small dict of
patches, never a weight. Patches apply when the model manager loads a clone, from a backup of the original tensors,
and come off bit for bit when it unloads or when another clone with other patches is loaded; so a LoRA strength
change recomputes the patched weights from memory and never reads the checkpoint again.

A patch is a delta tensor (``weight + strength * delta``) or a function ``fn(weight, strength) -> new weight``
that gets the current weight in float32 on the compute device; patches on one key apply in the order added.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hearth.core.models.devices import as_device, module_bytes, trim_heap
from hearth.core.models.dtype_policy import settle_patch

PatchFunction = Callable[[torch.Tensor, float], torch.Tensor]
_patch_ids = itertools.count(1)


class _TrimHeapWhenDropped:
    """Hands freed heap pages back to the system when the model that owns it is dropped.

    It is the last field of :class:`ModelWeights`, and CPython releases an instance's attributes in the order they
    were set, so this runs right after the module (and with it the weights) was released: a cache that drops a
    model and then reads the machine's free memory sees the model gone, not parked in glibc's free lists.
    """

    __slots__ = ()

    def __del__(self) -> None:
        trim_heap()


class PatchError(ValueError):
    """A patch does not fit the weight it targets; the message names the model, the key and both shapes."""


@dataclass(frozen=True)
class WeightPatch:
    """One patch on one weight: ``weight * strength_model + strength * delta`` or ``fn(weight, strength)``."""

    strength: float
    value: torch.Tensor | PatchFunction
    strength_model: float = 1.0
    source: str = ""  # who added it (a LoRA file name), for status and error messages


@dataclass(eq=False)
class ModelWeights:
    """The base weights every clone of one model shares, and which clone's patches are on them right now.

    ``backup`` holds the original tensor of every patched key (on the offload device), so restoring is a swap or a
    copy of the exact original bits, never a recomputation.
    """

    module: nn.Module
    name: str
    load_device: torch.device
    offload_device: torch.device
    backup: dict[str, torch.Tensor] = field(default_factory=dict)
    applied: int | None = None  # patch_id of the patch set on the weights, None when they are the originals
    nbytes: int = 0
    # Keys the dtype policy widened while loaded, with the dtype each was stored in (see dtype_policy.hold).
    held_from: dict[str, torch.dtype] = field(default_factory=dict)
    dtype_choice: Any = None  # the manager's DtypeChoice at the last load, for status and /system_stats
    _trim: _TrimHeapWhenDropped = field(default_factory=_TrimHeapWhenDropped, repr=False)  # keep it last

    def tensor(self, key: str) -> tuple[dict[str, Any], str, torch.Tensor]:
        """The dict holding ``key`` (a module's ``_parameters`` or ``_buffers``), the attribute name, the tensor."""
        path, _, attr = key.rpartition(".")
        owner = self.module.get_submodule(path) if path else self.module
        for holder in (owner._parameters, owner._buffers):
            if holder.get(attr) is not None:
                return holder, attr, holder[attr]
        raise KeyError(key)

    def set_tensor(self, key: str, value: torch.Tensor) -> None:
        holder, attr, current = self.tensor(key)
        if isinstance(current, nn.Parameter):
            current.data = value  # keep the Parameter object: hooks and tied references stay valid
        else:
            holder[attr] = value

    def restore(self, *, to_offload: bool = False) -> None:
        """Put the original tensors back: on the device each key lives on now, or with ``to_offload`` where the
        backups already are (an unload about to move everything there anyway: no copy in either direction)."""
        for key, original in self.backup.items():
            current = self.tensor(key)[2]
            if not to_offload and original.device != current.device:
                original = original.to(current.device)
            self.set_tensor(key, original)
        self.backup.clear()
        self.applied = None


class PatchedModel:
    """A model as nodes hand it around: shared base weights, its own patches, where it runs, what it needs.

    :param module: the torch module; its weights may be memory-mapped CPU tensors straight from the checkpoint.
    :param name: shown in status reports and errors (the checkpoint's file name is a good choice).
    :param load_device: where it computes (default: :func:`hearth.core.models.devices.default_device`).
    :param offload_device: where its weights wait when not loaded (default: the CPU).
    :param memory_estimate: bytes a forward needs beyond the weights (activations); an int, or a function
        ``(input_shape, dtype) -> bytes`` called by :meth:`memory_required`.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        name: str = "",
        load_device: str | torch.device | None = None,
        offload_device: str | torch.device = "cpu",
        memory_estimate: int | Callable[[tuple[int, ...] | None, torch.dtype | None], int] = 0,
    ) -> None:
        self.weights = ModelWeights(module, name or type(module).__name__, as_device(load_device),
                                    as_device(offload_device), nbytes=module_bytes(module))
        self.patches: dict[str, list[WeightPatch]] = {}
        self.patch_id: int | None = None  # None: no patches, the base weights as loaded
        self.memory_estimate = memory_estimate

    # -- what it is ----------------------------------------------------------------------------------------

    @property
    def module(self) -> nn.Module:
        return self.weights.module

    @property
    def name(self) -> str:
        return self.weights.name

    @property
    def load_device(self) -> torch.device:
        return self.weights.load_device

    @property
    def offload_device(self) -> torch.device:
        return self.weights.offload_device

    @property
    def nbytes(self) -> int:
        """Bytes of the weights as held now: as stored, or widened while the manager holds them in the compute
        dtype (:mod:`~hearth.core.models.dtype_policy`). Patches do not change shapes."""
        return self.weights.nbytes

    def memory_bytes(self) -> int:
        """Bytes this model holds, for the executor's ``ram`` cache when it weighs outputs to evict."""
        return self.weights.nbytes

    def memory_required(self, input_shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None) -> int:
        """Bytes one forward needs beyond the weights, as the model declared (0 when it declared nothing)."""
        if callable(self.memory_estimate):
            return int(self.memory_estimate(input_shape, dtype))
        return int(self.memory_estimate)

    def shares_weights(self, other: PatchedModel) -> bool:
        return self.weights is other.weights

    def __repr__(self) -> str:
        return f"<PatchedModel {self.name!r} {self.nbytes / 2**20:.1f} MiB, {len(self.patches)} patched keys>"

    # -- patches -------------------------------------------------------------------------------------------

    def clone(self) -> PatchedModel:
        """A new handle on the same weights with a copy of the patch lists: no tensor is copied."""
        twin = object.__new__(PatchedModel)
        twin.weights = self.weights
        twin.patches = {key: list(patches) for key, patches in self.patches.items()}
        twin.patch_id = self.patch_id  # same patches: loading the twin after self needs no re-patching
        twin.memory_estimate = self.memory_estimate
        return twin

    def add_patches(
        self,
        patches: Mapping[str, torch.Tensor | PatchFunction],
        strength: float = 1.0,
        *,
        strength_model: float = 1.0,
        source: str = "",
    ) -> list[str]:
        """Add patches, keyed by the module's state-dict keys. Returns the keys that exist in the model.

        Keys the model does not have are skipped, so a LoRA made for another model family patches what matches;
        the caller compares the returned list with what it asked for and reports the rest. A delta whose shape
        cannot fit its weight is an error now, not at load.
        """
        known = {key: t for key, t in self.module.state_dict(keep_vars=True).items()}
        applied = []
        for key, value in patches.items():
            target = known.get(key)
            if target is None:
                continue
            if isinstance(value, torch.Tensor) and value.numel() != target.numel():
                raise PatchError(f"{self.name}: patch for {key!r} has shape {tuple(value.shape)}, the weight has "
                                 f"{tuple(target.shape)}" + (f" (from {source})" if source else ""))
            self.patches.setdefault(key, []).append(WeightPatch(float(strength), value, float(strength_model), source))
            applied.append(key)
        if applied:
            self.patch_id = next(_patch_ids)
        return applied

    @property
    def patches_applied(self) -> bool:
        """Whether the shared weights carry exactly this clone's patches (none for an unpatched clone)."""
        return self.weights.applied == self.patch_id

    def patched_keys(self) -> list[str]:
        return list(self.patches)

    def patched_weight(self, key: str, original: torch.Tensor, device: torch.device) -> torch.Tensor:
        """``original`` with this clone's patches for ``key`` applied, computed in float32 on ``device``.

        Kept in ``original``'s dtype, except where the model computes wider than that on its device (float16
        weights on a CPU): then in the compute dtype, as :func:`~hearth.core.models.dtype_policy.patch_dtype` says;
        rounded first where the module asks (:func:`~hearth.core.models.dtype_policy.settle_patch`).
        """
        weight = original.to(device=device, dtype=torch.float32, copy=True)
        for patch in self.patches[key]:
            if patch.strength_model != 1.0:
                weight *= patch.strength_model
            if isinstance(patch.value, torch.Tensor):
                delta = patch.value.to(device=device, dtype=torch.float32).reshape(weight.shape)
                weight.add_(delta, alpha=patch.strength)
            else:
                weight = patch.value(weight, patch.strength)
                if tuple(weight.shape) != tuple(original.shape):
                    raise PatchError(f"{self.name}: patch function for {key!r} returned shape "
                                     f"{tuple(weight.shape)}, the weight has {tuple(original.shape)}")
        return settle_patch(self.weights, original, weight)

    def patch_weights(self) -> None:
        """Put this clone's patches on the shared weights, first taking off any other clone's.

        Each patched tensor keeps the device it is on (a resident weight is patched on the device, a streamed one
        on the offload device); the originals go to ``weights.backup`` on the offload device.
        """
        weights = self.weights
        if weights.applied == self.patch_id:
            return
        weights.restore()
        try:
            for key in self.patches:
                current = weights.tensor(key)[2].data
                offload = weights.offload_device
                weights.backup[key] = current if current.device == offload else current.to(offload)
                patched = self.patched_weight(key, current, weights.load_device)
                weights.set_tensor(key, patched.to(current.device))
        except BaseException:
            weights.restore()  # never leave half a patch set on the weights
            raise
        weights.applied = self.patch_id

    def unpatch_weights(self) -> None:
        """Restore the original weights, bit for bit, whichever clone patched them."""
        self.weights.restore()
