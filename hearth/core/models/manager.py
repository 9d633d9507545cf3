"""The model manager: which models sit on which device, within what budget, and what leaves when room is needed.

Nodes ask the manager to load the models they are about to run (``manager.load(unet, memory_required=...)``).
The manager keeps each device within its budget: models not needed now leave least-recently-used first, and a
model too big for the whole budget is loaded in part, its remaining layers streamed in per forward. On a device
without fast half precision (a CPU), a float16 model is held in its float32 compute dtype while loaded when the
budget has room for that, else kept float16 and cast per call (:mod:`~hearth.core.models.dtype_policy`).

The manager holds models only weakly. When the executor's cache drops the last reference to a model (the ``ram``
cache strategy evicting an output), the model's memory goes back at once and the manager forgets it; glibc's
leftovers are trimmed on the manager's next call (or :meth:`ModelManager.free`).
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from hearth.core.models import dtype_policy as dtypes
from hearth.core.models.devices import as_device, default_device, device_name, memory_info, release_memory
from hearth.core.models.offload import Placement, place
from hearth.core.models.patches import ModelWeights, PatchedModel

log = logging.getLogger("hearth.models")
if log.level == logging.NOTSET:
    # What the manager did with memory (a dtype choice, an eviction, a partial load) belongs in the run log as
    # ComfyUI prints its model loads; the root logger's default (WARNING) would drop these lines unseen.
    log.setLevel(logging.INFO)

MiB = 1024 * 1024
# Headroom left free on a GPU for what no estimate covers: cuDNN workspaces, the allocator's fragmentation.
DEFAULT_CUDA_RESERVE = 512 * MiB


class ModelTooLargeError(MemoryError):
    """Not even a partial load fits: the message names the model, what it needs and the budget."""


def _locked(method):
    """Run a manager method under its lock: the web server's /free and the executor may call from two threads."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


@dataclass(eq=False)
class LoadedModel:
    """The manager's record of one model on a device. Holds the model's weights weakly."""

    weights_ref: weakref.ref[ModelWeights]
    name: str
    device: torch.device
    nbytes: int
    placement: Placement
    last_used: int = 0
    loads: int = 1  # times its weights were moved to the device

    @property
    def resident_bytes(self) -> int:
        return self.placement.resident_bytes

    @property
    def partial(self) -> bool:
        return self.placement.partial

    def as_dict(self) -> dict[str, Any]:
        weights = self.weights_ref()
        choice = weights.dtype_choice if weights is not None else None
        return {"name": self.name, "device": str(self.device), "bytes": self.nbytes,
                "resident_bytes": self.resident_bytes, "streamed_bytes": self.placement.streamed_bytes,
                "partial": self.partial, "loads": self.loads,
                "patched_keys": len(weights.backup) if weights is not None else 0,
                "dtype": choice.as_dict() if choice is not None else None}


@dataclass
class ManagerStats:
    """Counters a user (and the memory bench) can read: what moved and why."""

    loads: int = 0  # models moved to a device (a reload after eviction counts again)
    evictions: int = 0  # models unloaded to make room
    partial_loads: int = 0
    repatches: int = 0  # patch-set changes applied to resident weights without moving them
    collected: int = 0  # models forgotten because every reference to them was dropped
    by_model: dict[str, int] = field(default_factory=dict)  # loads per model name


class ModelManager:
    """Loads models onto devices within a memory budget.

    :param device: the main compute device (default: :func:`~hearth.core.models.devices.default_device`).
    :param vram_mb: a fixed budget for the main device in MiB (``--vram MB``); default is what the device has
        free (CUDA) or, on the CPU, the available RAM.
    :param budgets: fixed budgets in bytes per device string (``{"cpu": 2 * 2**30}``); a CPU "device" with a
        budget makes all the eviction and offload logic run (and testable) without a GPU.
    :param reserve_bytes: kept free on the device beyond every estimate (default 512 MiB on CUDA, 0 elsewhere).
    :param plugins: a plugin manager whose ``memory_estimate_for_model`` hook is asked first for each model's
        working memory (see :meth:`use_plugins`).
    """

    def __init__(
        self,
        device: str | torch.device | None = None,
        *,
        vram_mb: int | None = None,
        budgets: Mapping[str, int] | None = None,
        reserve_bytes: int | None = None,
        plugins: Any = None,
    ) -> None:
        self.device = as_device(device) if device is not None else default_device()
        self._budgets: dict[torch.device, int] = {as_device(d): int(b) for d, b in (budgets or {}).items()}
        if vram_mb is not None:
            self._budgets[self.device] = int(vram_mb) * MiB
        self._reserve = reserve_bytes
        self._records: dict[int, LoadedModel] = {}  # id(ModelWeights) -> record, in no particular order
        self._clock = itertools.count(1)
        self._trim_pending = False
        self._lock = threading.RLock()
        self.stats = ManagerStats()
        self._plugins = plugins

    def use_plugins(self, plugins: Any) -> None:
        """Ask ``plugins``' ``memory_estimate_for_model`` hook for working-memory estimates from now on."""
        self._plugins = plugins

    def memory_estimate(self, model: PatchedModel, input_shape: tuple[int, ...] | None = None,
                        dtype: torch.dtype | None = None) -> int:
        """Bytes one forward of ``model`` needs beyond its weights: a plugin's answer, else the model's own."""
        if self._plugins is not None:
            answer = self._plugins.hook.memory_estimate_for_model(model=model, input_shape=input_shape, dtype=dtype)
            if answer is not None:
                return int(answer)
        return model.memory_required(input_shape, dtype)

    # -- budgets -------------------------------------------------------------------------------------------

    def set_budget(self, device: str | torch.device, nbytes: int | None) -> None:
        """Fix a device's budget in bytes, or go back to the automatic budget with ``None``."""
        if nbytes is None:
            self._budgets.pop(as_device(device), None)
        else:
            self._budgets[as_device(device)] = int(nbytes)

    def reserve(self, device: torch.device) -> int:
        if self._reserve is not None:
            return self._reserve
        return DEFAULT_CUDA_RESERVE if device.type == "cuda" else 0

    def used_bytes(self, device: str | torch.device) -> int:
        """Bytes of model weights the manager keeps resident on ``device``."""
        device = as_device(device)
        return sum(r.resident_bytes for r in self._live_records() if r.device == device)

    def budget(self, device: str | torch.device | None = None) -> int:
        """Bytes the manager may fill with weights and inference memory on ``device``."""
        device = as_device(device) if device is not None else self.device
        if device in self._budgets:
            return self._budgets[device]
        # Automatic: what is free now plus what our own models hold, less the headroom.
        return max(0, memory_info(device).free + self.used_bytes(device) - self.reserve(device))

    def free_bytes(self, device: str | torch.device | None = None) -> int:
        device = as_device(device) if device is not None else self.device
        return self.budget(device) - self.used_bytes(device)

    def manages(self, device: torch.device, offload_device: torch.device) -> bool:
        """Whether budgets mean anything for models moving between these two places.

        Computing on the CPU with weights "offloaded" to the CPU moves nothing, so evicting or streaming would
        only cost time; the manager then just tracks the model. A fixed budget (tests, ``--vram``) always counts.
        """
        return device != offload_device or device in self._budgets

    # -- loading -------------------------------------------------------------------------------------------

    @_locked
    def load(self, models: PatchedModel | Sequence[PatchedModel], *, memory_required: int | None = None,
             input_shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None) -> None:
        """Make ``models`` ready to run on their load devices, with their patches on.

        :param memory_required: bytes the coming computation needs beyond the weights; default: the sum of
            :meth:`memory_estimate` for each model (plugins first, then the model's own estimate).
        :param input_shape: the batch shape the models will run on, passed to the estimates.
        :param dtype: the compute dtype, passed to the estimates.

        Models already resident stay (and become most recently used). Others are loaded after evicting
        least-recently-used models that are not in ``models``; if a model still does not fit whole, it is
        loaded partially. Raises :class:`ModelTooLargeError` when the inference memory alone exceeds the budget.
        """
        wanted = [models] if isinstance(models, PatchedModel) else list(models)
        self._collect()
        if memory_required is None:
            memory_required = sum(self.memory_estimate(m, input_shape, dtype) for m in wanted)
        keep = {id(m.weights) for m in wanted}
        for model in wanted:
            record = self._records.get(id(model.weights))
            if record is not None:
                record.last_used = next(self._clock)
        for device in dict.fromkeys(m.load_device for m in wanted):
            group = [m for m in wanted if m.load_device == device]
            self._load_group(device, group, memory_required, keep)

    def _load_group(self, device: torch.device, group: list[PatchedModel], memory_required: int,
                    keep: set[int]) -> None:
        for model in group:
            if id(model.weights) not in self._records:
                self._choose_dtype(model, device, memory_required, group)
        unmanaged = [m for m in group if not self.manages(device, m.offload_device)]
        for model in unmanaged:
            if id(model.weights) not in self._records:
                self._record(model, device, place(model.module, device, model.offload_device, None), None)
            self._ensure_patches(model)
        group = [m for m in group if m not in unmanaged]
        if not group:
            return
        missing = sum(m.nbytes - self._resident(m) for m in group)
        self.make_room(missing + memory_required, device, keep=keep)
        if memory_required > self.budget(device):
            names = ", ".join(m.name for m in group)
            raise ModelTooLargeError(
                f"running {names} needs {memory_required / MiB:.0f} MiB of working memory on {device}, beyond its "
                f"{self.budget(device) / MiB:.0f} MiB budget; use a smaller batch or image size, or raise --vram")
        for model in group:
            record = self._records.get(id(model.weights))
            spare = self.free_bytes(device) - memory_required
            if record is not None and spare >= 0 and (
                not record.partial or spare < min(u.nbytes for u in record.placement.streamed)
            ):
                # Resident, or partial with no room for another layer: moving anything would gain nothing.
                self._ensure_patches(model)
                continue
            old = self._records.pop(id(model.weights), None)
            room = spare + (old.resident_bytes if old is not None else 0)
            if old is not None:  # grow a partial load, or shrink one to make room: only the difference moves
                old.placement.detach()
            full = model.nbytes <= room
            placement = place(model.module, device, model.offload_device, None if full else max(room, 0))
            self._record(model, device, placement, old)
            if placement.partial:
                self.stats.partial_loads += 1
                log.info("loaded %s partially on %s: %.0f MiB resident, %.0f MiB streamed", model.name, device,
                         placement.resident_bytes / MiB, placement.streamed_bytes / MiB)
            model.patch_weights()

    def _choose_dtype(self, model: PatchedModel, device: torch.device, memory_required: int,
                      group: list[PatchedModel]) -> None:
        """Hold ``model``'s half-precision weights in its compute dtype if the budget has room (see
        :mod:`~hearth.core.models.dtype_policy`), and log the choice: one line per load of such a model.

        With a budget to manage, the whole model in the compute dtype must fit beside the working memory and the
        other models of this load (least-recently-used others are evicted for it, as for any load); computing on
        the CPU from the CPU, the widened copy must fit in the memory free now, beside the working memory.
        """
        widening = dtypes.widening(model.module, device)
        if widening is None:
            model.weights.dtype_choice = None
            self._align(model, device)
            return
        stored, compute = widening
        stored_bytes = model.nbytes
        wide = dtypes.held_bytes(model.module, compute)
        if self.manages(device, model.offload_device):
            others = sum(m.nbytes for m in group if m is not model)
            room = self.budget(device) - memory_required - others
        else:
            room = self.free_bytes(device) - memory_required
        held = compute if wide <= room else stored
        if held == compute:
            dtypes.hold(model.weights, compute)
        self._align(model, device)  # what the cast left (fp32 norms), or all of it when it stays stored
        model.weights.dtype_choice = dtypes.DtypeChoice(model.name, str(device), stored, compute, held,
                                                              stored_bytes, wide, room)
        log.info(model.weights.dtype_choice.describe())

    @staticmethod
    def _align(model: PatchedModel, device: torch.device) -> None:
        # Weights the CPU computes from where they lie: file-mapped ones off a cache line round differently.
        if device.type == "cpu" and model.offload_device.type == "cpu":
            dtypes.align(model.weights)

    def _record(self, model: PatchedModel, device: torch.device, placement: Placement, old: LoadedModel | None) -> None:
        record = LoadedModel(weakref.ref(model.weights, self._forget), model.name, device, model.nbytes,
                             placement, last_used=next(self._clock), loads=(old.loads + 1) if old else 1)
        self._records[id(model.weights)] = record
        self.stats.loads += 1
        self.stats.by_model[model.name] = self.stats.by_model.get(model.name, 0) + 1

    def _ensure_patches(self, model: PatchedModel) -> None:
        # Another clone's patches are on the shared weights: swap patch sets in place, from the backup in memory.
        if model.weights.applied != model.patch_id:
            model.patch_weights()
            self.stats.repatches += 1

    def _resident(self, model: PatchedModel) -> int:
        record = self._records.get(id(model.weights))
        return record.resident_bytes if record is not None else 0

    @_locked
    def make_room(self, nbytes: int, device: str | torch.device | None = None, *,
                  keep: Iterable[int] = ()) -> int:
        """Unload least-recently-used models from ``device`` until ``nbytes`` are free. Returns bytes freed.

        ``keep`` holds ``id(model.weights)`` of models that must stay. Nodes that need scratch memory not tied to
        a model (a VAE decode of a large image) call this before allocating.
        """
        device = as_device(device) if device is not None else self.device
        keep = set(keep)
        freed = 0
        candidates = sorted((r for r in self._live_records() if r.device == device), key=lambda r: r.last_used)
        for record in candidates:
            if self.free_bytes(device) >= nbytes:
                break
            if id(record.weights_ref()) in keep:
                continue
            freed += record.resident_bytes
            self._unload(record)
            self.stats.evictions += 1
            log.info("evicted %s from %s to make room for %.0f MiB", record.name, device, nbytes / MiB)
        # Nothing to release here: evicted weights went to the offload device and their device copies were freed
        # by reference counting into torch's caching allocator, which the next load reuses.
        return freed

    @_locked
    def unload(self, model: PatchedModel) -> bool:
        """Move a model's weights off its device and take its patches off. Returns whether it was loaded."""
        record = self._records.get(id(model.weights))
        if record is None:
            return False
        self._unload(record)
        return True

    def _unload(self, record: LoadedModel) -> None:
        self._records.pop(id(record.weights_ref()), None)
        weights = record.weights_ref()
        if weights is not None:
            # Originals first, straight from their backups on the offload device: the patched device copies are
            # dropped instead of being copied back only to be thrown away.
            weights.restore(to_offload=True)
            dtypes.release(weights)  # a widened copy goes back to the stored dtype: its extra bytes are freed
        record.placement.remove()

    def is_loaded(self, model: PatchedModel) -> bool:
        """Whether ``model``'s weights are on its device (with whichever clone's patches were applied last)."""
        return id(model.weights) in self._records

    def is_ready(self, models: PatchedModel | Sequence[PatchedModel]) -> bool:
        """Whether ``models`` can run now: each loaded, with its own patches on the shared weights.

        A clone whose twin ran last (another LoRA strength) is loaded but not ready: :meth:`load` re-patches it.
        """
        wanted = [models] if isinstance(models, PatchedModel) else models
        return all(self.is_loaded(m) and m.patches_applied for m in wanted)

    def ensure_loaded(self, models: PatchedModel | Sequence[PatchedModel], *, memory_required: int | None = None,
                      input_shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None) -> None:
        """:meth:`load` ``models`` unless they are :meth:`is_ready` already (the cheap check a forward makes)."""
        if not self.is_ready(models):
            self.load(models, memory_required=memory_required, input_shape=input_shape, dtype=dtype)

    def loaded_models(self, device: str | torch.device | None = None) -> list[LoadedModel]:
        """Records of loaded models, most recently used first."""
        records = self._live_records()
        if device is not None:
            records = [r for r in records if r.device == as_device(device)]
        return sorted(records, key=lambda r: r.last_used, reverse=True)

    @_locked
    def free(self, unload_models: bool = True, free_memory: bool = True) -> dict[str, Any]:
        """What ComfyUI's ``POST /free`` asks for: unload every model, and/or give cached memory back."""
        unloaded = []
        if unload_models:
            for record in self.loaded_models():
                unloaded.append(record.name)
                self._unload(record)
        if free_memory or unloaded:
            release_memory()
            self._trim_pending = False
        return {"unloaded": unloaded, "free": {str(d): self.free_bytes(d) for d in self._devices()}}

    # -- forgetting dropped models -------------------------------------------------------------------------

    def _forget(self, ref: weakref.ref) -> None:
        # Called while the weights are being destroyed: drop the record; trimming has to wait until the
        # tensors are actually gone, which is after this callback returns.
        for key, record in list(self._records.items()):
            if record.weights_ref is ref:
                del self._records[key]
                self.stats.collected += 1
        self._trim_pending = True

    def _collect(self) -> None:
        if self._trim_pending:
            self._trim_pending = False
            release_memory()

    def _live_records(self) -> list[LoadedModel]:
        # A snapshot first: a model dropped in another thread runs _forget, which edits the dict, at any moment.
        return [r for r in list(self._records.values()) if r.weights_ref() is not None]

    # -- status --------------------------------------------------------------------------------------------

    def dtype_policy(self) -> list[dict[str, Any]]:
        """Per loaded model whose device computes wider than its file stores: the dtype its weights are held in and
        why (``DtypeChoice.as_dict``), most recently used first. What ``/system_stats`` shows as ``dtype_policy``."""
        choices = []
        for record in self.loaded_models():
            weights = record.weights_ref()
            if weights is not None and weights.dtype_choice is not None:
                choices.append(weights.dtype_choice.as_dict())
        return choices

    def _devices(self) -> list[torch.device]:
        return list(dict.fromkeys([self.device, *self._budgets, *(r.device for r in self._live_records())]))

    def system_stats_devices(self) -> list[dict[str, Any]]:
        """The ``devices`` list of ComfyUI's ``GET /system_stats``, one entry per device the manager uses."""
        entries = []
        for device in self._devices():
            mem = memory_info(device)
            entries.append({"name": device_name(device), "type": device.type,
                            "index": device.index,  # None for the CPU, as ComfyUI reports it
                            "vram_total": mem.total, "vram_free": mem.free,
                            "torch_vram_total": mem.torch_total, "torch_vram_free": mem.torch_free})
        return entries

    @_locked
    def status(self) -> dict[str, Any]:
        """Devices (as ``/system_stats`` shows them, plus Hearth's budget figures), loaded models and counters."""
        self._collect()
        devices = self.system_stats_devices()
        for entry, device in zip(devices, self._devices(), strict=True):
            entry["hearth"] = {"budget": self.budget(device), "used": self.used_bytes(device),
                               "free": self.free_bytes(device), "fixed_budget": device in self._budgets}
        return {"devices": devices, "models": [r.as_dict() for r in self.loaded_models()],
                "stats": {k: v for k, v in vars(self.stats).items()}}


def default_manager() -> ModelManager:
    """The current Runtime's model manager (made on first use, with the Runtime's ``vram_mb`` budget).

    Outside every Runtime this raises :class:`~hearth.core.runtime.NoRuntimeError` rather than answering with a
    process-wide manager: such a manager would keep its budget, LRU order and applied patches from one run (or one
    test) into the next and count models no live run holds, and a manager made fresh per call would not know
    what is already on the device, so loads would overrun the budget. Either way memory would go wrong without a
    word; build a Runtime (``Runtime.build(...)``) and work inside ``with runtime.activate():``.
    """
    from hearth.core.runtime import NoRuntimeError, current_runtime

    runtime = current_runtime()
    if runtime is None:
        raise NoRuntimeError("no Hearth Runtime is active, so there is no model manager: build one with "
                             "hearth.core.runtime.Runtime.build(...) and load models inside `with runtime.activate():`"
                             " (the executor does this for nodes; tests get it from the hearth_runtime fixture)")
    return runtime.manager
