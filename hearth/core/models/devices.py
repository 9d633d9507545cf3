"""Devices: which one to compute on, its memory and compute dtype, and handing freed memory back to the system."""

from __future__ import annotations

import ctypes
import gc
import mmap
import sys
from dataclasses import dataclass

import psutil
import torch
from torch import nn


def default_device() -> torch.device:
    """The device models run on when nobody says otherwise: the first CUDA GPU, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def as_device(device: str | torch.device | None) -> torch.device:
    """A device with its index filled in (``"cuda"`` -> ``cuda:0``), so two spellings of one device compare equal."""
    device = default_device() if device is None else torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available() else 0)
    return device


def supports_dtype(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``device`` computes in ``dtype`` at full speed, not whether it merely can."""
    if dtype == torch.float32:
        return True
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        if dtype == torch.float16:
            return major >= 7  # Pascal has fp16 storage but crippled fp16 arithmetic
        if dtype == torch.bfloat16:
            return major >= 8 and torch.cuda.is_bf16_supported()
        return False
    if device.type == "mps":
        return dtype == torch.float16
    # CPUs run fp16/bf16 matmuls through slow paths or emulation; fp32 is both faster and exact enough.
    return False


def compute_dtype(
    device: str | torch.device,
    preferred: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16, torch.float32),
) -> torch.dtype:
    """The dtype a model should compute in on ``device``: the first of ``preferred`` that the device runs well.

    A model family passes its own order (SDXL's VAE, which overflows in fp16, would pass ``(bf16, fp32)``).
    Weights load in their stored dtype and layers cast them to this one as they run; while loaded, the manager
    may hold them in it instead (:mod:`~hearth.core.models.dtype_policy`).
    """
    device = as_device(device)
    for dtype in preferred:
        if supports_dtype(device, dtype):
            return dtype
    return torch.float32


@dataclass(frozen=True)
class DeviceMemory:
    """Memory of one device in bytes: as the driver sees it, and as torch's caching allocator holds it."""

    total: int
    free: int
    torch_total: int
    torch_free: int


def memory_info(device: str | torch.device) -> DeviceMemory:
    device = as_device(device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        stats = torch.cuda.memory_stats(device)
        reserved = stats.get("reserved_bytes.all.current", 0)
        active = stats.get("active_bytes.all.current", 0)
        # Memory torch reserved but is not using is free to us even though the driver counts it as taken.
        return DeviceMemory(total, free + reserved - active, reserved, reserved - active)
    vm = psutil.virtual_memory()
    return DeviceMemory(vm.total, vm.available, vm.total, vm.available)


def device_name(device: str | torch.device) -> str:
    """The name ``/system_stats`` shows: ``cuda:0 NVIDIA H200`` or ``cpu``."""
    device = as_device(device)
    if device.type == "cuda":
        return f"{device} {torch.cuda.get_device_name(device)}"
    return str(device)


def module_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers, counting a tensor reachable twice (tied weights) once.

    Tensors are told apart by where their data starts and how long it is, not by storage: views into one shared
    storage (a fused qkv buffer, a whole checkpoint mapped as one storage) are each counted.
    """
    seen: set[tuple[str, int, int]] = set()
    total = 0
    for tensor in [*module.parameters(), *module.buffers()]:
        nbytes = tensor.numel() * tensor.element_size()
        key = (str(tensor.device), tensor.data_ptr(), nbytes)
        if key in seen and key[1] != 0:
            continue
        seen.add(key)
        total += nbytes
    return total


def _find_malloc_trim():
    # glibc keeps small freed blocks in its heap; a model made of 1 MB tensors can leave hundreds of MB there
    # after it is dropped, and malloc_trim hands those pages back. Looked up once, at import: it is called from
    # finalizers, which may run while the interpreter shuts down and can import nothing.
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # None on musl, which has nothing to hand back
    except OSError:
        return None


_malloc_trim = _find_malloc_trim()


def trim_heap() -> None:
    """Return the C heap's free pages to the system (glibc only; a no-op elsewhere)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


_MADV_PAGEOUT = 21  # Linux 5.4+: reclaim these pages now; file pages are re-read if touched, written ones swapped


def _find_madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        madvise = ctypes.CDLL(None).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return madvise


_madvise = _find_madvise()


def release_pages(tensor: torch.Tensor) -> None:
    """Hand the pages under a CPU tensor that was just copied (cast to another dtype) back to the system.

    Meant for tensors memory-mapped from a checkpoint: the mapping lives on while other tensors of the file do, and
    the pages a cast read would stay resident with it. ``MADV_PAGEOUT`` never loses data (an unwritten file page is
    read again when touched, a written one goes to swap or stays), so this is safe whoever else uses the tensor;
    where the call is missing (not Linux, an old kernel) nothing happens.
    """
    if _madvise is None or tensor.device.type != "cpu" or tensor.untyped_storage().resizable():
        return  # torch's own allocations go back when dropped; only borrowed memory (a file mapping) needs this
    page = mmap.PAGESIZE
    start = -(-tensor.data_ptr() // page) * page  # whole pages inside the tensor only: neighbours stay untouched
    end = (tensor.data_ptr() + tensor.numel() * tensor.element_size()) // page * page
    if end > start:
        _madvise(start, end - start, _MADV_PAGEOUT)


def release_memory(device: str | torch.device | None = None) -> None:
    """Hand memory that dropped tensors leave behind back to the system (and to other processes on a GPU)."""
    gc.collect()
    if torch.cuda.is_available() and (device is None or as_device(device).type == "cuda"):
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()
    trim_heap()
