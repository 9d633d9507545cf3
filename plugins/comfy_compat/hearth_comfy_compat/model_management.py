"""ComfyUI's ``comfy.model_management`` module: devices, dtypes, memory and interrupts from Hearth's model manager.

Every public name of ComfyUI's module is here. What differs: Hearth has one model manager that decides residency
by budget, so ``vram_state`` reports the device's kind (``DISABLED`` on a CPU, ``NORMAL_VRAM`` on a GPU) and
setting it changes nothing; ``current_loaded_models`` is a fresh list of :class:`LoadedModel` records read from
the manager at each access, each holding the model's weights (``.model``) rather than a ModelPatcher; attention
always runs through torch's scaled_dot_product_attention (``xformers_enabled()`` is ``False``).
"""

from __future__ import annotations

import enum
import gc
import sys
import threading
from typing import Any

import torch

from hearth.core import context
from hearth.core.context import InterruptProcessing
from hearth.core.models.devices import (
    as_device,
    compute_dtype,
    default_device,
    device_name,
    memory_info,
    module_bytes,
    release_memory,
)
from hearth.core.models.devices import supports_dtype as _supports
from hearth.core.models.manager import default_manager
from hearth.core.runtime import NoRuntimeError

InterruptProcessingException = InterruptProcessing
OOM_EXCEPTION = torch.cuda.OutOfMemoryError
XFORMERS_IS_AVAILABLE = False  # Hearth's attention runs through torch's scaled_dot_product_attention
XFORMERS_ENABLED_VAE = False
ENABLE_PYTORCH_ATTENTION = True
DISABLE_SMART_MEMORY = False  # Hearth's manager keeps models loaded while the budget allows
FORCE_FP32 = False
PRIORITIZE_FP16 = False
MIN_WEIGHT_MEMORY_RATIO = 0.4
EXTRA_RESERVED_VRAM = 0
VAE_DTYPES = [torch.bfloat16, torch.float32]  # fp16 VAEs overflow (SDXL's does)
directml_enabled = False
lowvram_available = True
WINDOWS = sys.platform == "win32"
XFORMERS_VERSION = ""
SUPPORT_FP8_OPS = False
NUM_STREAMS = 1  # Hearth's manager moves weights without side streams
STREAMS: dict[Any, Any] = {}
interrupt_processing_mutex = threading.RLock()
torch_version = torch.version.__version__
torch_version_numeric = tuple(int(part) for part in torch_version.split("+")[0].split(".")[:2] if part.isdigit())
FLOAT8_TYPES = [getattr(torch, name) for name in ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
                                                  "float8_e8m0fnu") if hasattr(torch, name)]
xpu_available = hasattr(torch, "xpu") and torch.xpu.is_available()
npu_available = False
mlu_available = False


class VRAMState(enum.Enum):
    """How ComfyUI keeps weights on the GPU; Hearth's manager decides by budget, so only the kind of device shows."""

    DISABLED = 0  # no GPU: everything on the CPU
    NO_VRAM = 1
    LOW_VRAM = 2
    NORMAL_VRAM = 3
    HIGH_VRAM = 4
    SHARED = 5  # CPU and GPU share memory (Apple silicon)


class CPUState(enum.Enum):
    GPU = 0
    CPU = 1
    MPS = 2


def _state_of(device: torch.device) -> tuple[VRAMState, CPUState]:
    if device.type == "cpu":
        return VRAMState.DISABLED, CPUState.CPU
    if device.type == "mps":
        return VRAMState.SHARED, CPUState.MPS
    return VRAMState.NORMAL_VRAM, CPUState.GPU


vram_state, cpu_state = _state_of(default_device())
set_vram_to = vram_state


def get_torch_device() -> torch.device:
    return default_manager().device


def get_torch_device_name(device: Any) -> str:
    return device_name(device)


def unet_offload_device() -> torch.device:
    return torch.device("cpu")


def intermediate_device() -> torch.device:
    # Values passed between nodes (IMAGE, LATENT) live on the CPU in Hearth, as data-types.md says.
    return torch.device("cpu")


def text_encoder_device() -> torch.device:
    return get_torch_device()


def text_encoder_offload_device() -> torch.device:
    return torch.device("cpu")


def vae_device() -> torch.device:
    return get_torch_device()


def vae_offload_device() -> torch.device:
    return torch.device("cpu")


def unet_dtype(device: Any = None, model_params: int = 0, supported_dtypes: Any = None,
               weight_dtype: Any = None) -> torch.dtype:
    preferred = tuple(supported_dtypes) if supported_dtypes else (torch.float16, torch.bfloat16, torch.float32)
    return compute_dtype(device if device is not None else get_torch_device(), preferred)


def vae_dtype(device: Any = None, allowed_dtypes: Any = ()) -> torch.dtype:
    preferred = tuple(allowed_dtypes) or (torch.bfloat16, torch.float32)  # fp16 VAEs overflow (SDXL's does)
    return compute_dtype(device if device is not None else get_torch_device(), preferred)


def text_encoder_dtype(device: Any = None) -> torch.dtype:
    return compute_dtype(device if device is not None else get_torch_device())


def should_use_fp16(device: Any = None, model_params: int = 0, prioritize_performance: bool = True,
                    manual_cast: bool = False) -> bool:
    return _supports(as_device(device if device is not None else get_torch_device()), torch.float16)


def should_use_bf16(device: Any = None, model_params: int = 0, prioritize_performance: bool = True,
                    manual_cast: bool = False) -> bool:
    return _supports(as_device(device if device is not None else get_torch_device()), torch.bfloat16)


def is_device_cpu(device: Any) -> bool:
    return torch.device(device).type == "cpu"


def is_device_mps(device: Any) -> bool:
    return torch.device(device).type == "mps"


def is_device_cuda(device: Any) -> bool:
    return torch.device(device).type == "cuda"


def get_autocast_device(device: Any) -> str:
    return torch.device(device).type if device is not None else "cuda"


def cast_to_device(tensor: torch.Tensor, device: Any, dtype: Any, copy: bool = False) -> torch.Tensor:
    return tensor.to(device=device, dtype=dtype, copy=copy)


def get_free_memory(dev: Any = None, torch_free_too: bool = False) -> int | tuple[int, int]:
    """Free bytes on the device (default the compute device); with ``torch_free_too``, also the part torch's
    allocator holds unused."""
    mem = memory_info(dev if dev is not None else get_torch_device())
    return (mem.free, mem.torch_free) if torch_free_too else mem.free


def get_total_memory(dev: Any = None, torch_total_too: bool = False) -> int | tuple[int, int]:
    mem = memory_info(dev if dev is not None else get_torch_device())
    return (mem.total, mem.torch_total) if torch_total_too else mem.total


def soft_empty_cache(force: bool = False) -> None:
    release_memory()


def free_memory(memory_required: int, device: Any, keep_loaded: Any = ()) -> int:
    """Unload least-recently-used models until ``memory_required`` bytes are free on ``device``."""
    keep = [id(getattr(_weights_of(m), "weights", m)) for m in keep_loaded
            if not getattr(type(m), "HEARTH_LENT", False)]
    return default_manager().make_room(int(memory_required), device, keep=keep)


def _weights_of(model: Any) -> Any:
    # ComfyUI passes ModelPatchers; a Hearth MODEL/CLIP/VAE carries its PatchedModel as ``patcher``.
    return getattr(model, "patcher", model)


def load_models_gpu(models: Any, memory_required: int = 0, force_patch_weights: bool = False,
                    minimum_memory_required: Any = None, force_full_load: bool = False) -> None:
    """Make the models resident (patches applied) through Hearth's manager, evicting others as needed.

    In a pack host, a model lent by Hearth's process is left to that process, which loads it when its methods run.
    """
    local = [m for m in models if not getattr(type(m), "HEARTH_LENT", False)]
    if local:
        default_manager().load([_weights_of(m) for m in local], memory_required=memory_required or None)


def load_model_gpu(model: Any) -> None:
    load_models_gpu([model])


def unload_all_models() -> None:
    default_manager().free(unload_models=True, free_memory=False)


def cleanup_models(keep_clone_weights_loaded: bool = False) -> None:
    """Nothing to do: Hearth's manager forgets a model when its weights are dropped."""


def processing_interrupted() -> bool:
    ctx = context.current()
    return ctx is not None and ctx.interrupt.is_set()


def throw_exception_if_processing_interrupted() -> None:
    context.check_interrupted()


def interrupt_current_processing(value: bool = True) -> None:
    ctx = context.current()
    if ctx is not None:
        if value:
            ctx.interrupt.set()
        else:
            ctx.interrupt.clear()


class LoadedModel:
    """ComfyUI's record of a loaded model, over a record of Hearth's manager: ``model`` is the model's weights
    (what Hearth's manager loads), ``device`` where they are."""

    def __init__(self, record: Any) -> None:
        self._record = record
        self.device = record.device
        self.currently_used = True

    @property
    def model(self) -> Any:
        return self._record.weights_ref()

    @property
    def real_model(self) -> Any:
        weights = self.model
        return getattr(weights, "module", weights)

    def model_memory(self) -> int:
        return int(self._record.nbytes)

    def model_loaded_memory(self) -> int:
        return int(self._record.resident_bytes)

    def model_offloaded_memory(self) -> int:
        return self.model_memory() - self.model_loaded_memory()

    def model_unload(self, memory_to_free: int | None = None, unpatch_weights: bool = True) -> bool:
        weights = self.model
        return weights is not None and default_manager().unload(weights)

    def __repr__(self) -> str:
        return f"<LoadedModel {self._record.name} on {self.device}>"


def __getattr__(name: str) -> Any:
    # A fresh list each time: Hearth's manager owns the records and drops a model when its weights go.
    if name == "current_loaded_models":
        return [LoadedModel(record) for record in _loaded_records()]
    # Read when asked, so importing the module does not start a GPU context.
    if name == "total_vram":
        return memory_info(default_device()).total / (1024 * 1024)  # MiB, as ComfyUI's
    if name == "total_ram":
        return memory_info("cpu").total / (1024 * 1024)
    if name == "interrupt_processing":  # ComfyUI's flag, read as Hearth's interrupt of the running prompt
        return processing_interrupted()
    raise AttributeError(name)


def _loaded_records() -> list[Any]:
    # Outside every Runtime there is no manager, and so nothing loaded (a pack may look at import time).
    try:
        manager = default_manager()
    except NoRuntimeError:
        return []
    return manager.loaded_models()


def loaded_models(only_currently_used: bool = False) -> list[Any]:
    """The weights of every model Hearth's manager has loaded, most recently used first."""
    return [m for m in (record.weights_ref() for record in _loaded_records()) if m is not None]


def unload_model_clones(model: Any, unload_weights_only: bool = True, force_unload: bool = True) -> None:
    """Nothing to do: Hearth's clones share one set of weights, which the manager loads once."""


def cleanup_models_gc() -> None:
    gc.collect()
    release_memory()


def is_device_type(device: Any, kind: str) -> bool:
    return hasattr(device, "type") and device.type == kind


def is_device_xpu(device: Any) -> bool:
    return is_device_type(device, "xpu")


def is_intel_xpu() -> bool:
    return cpu_state is CPUState.GPU and xpu_available


def is_ascend_npu() -> bool:
    return False


def is_mlu() -> bool:
    return False


def is_nvidia() -> bool:
    return cpu_state is CPUState.GPU and torch.version.cuda is not None and torch.cuda.is_available()


def is_amd() -> bool:
    return cpu_state is CPUState.GPU and getattr(torch.version, "hip", None) is not None


def is_directml_enabled() -> bool:
    return directml_enabled


def mac_version() -> tuple[int, ...] | None:
    if cpu_state is not CPUState.MPS:
        return None
    import platform

    return tuple(int(part) for part in platform.mac_ver()[0].split(".") if part.isdigit()) or None


def xformers_enabled() -> bool:
    return False


def xformers_enabled_vae() -> bool:
    return False


def pytorch_attention_enabled() -> bool:
    return True


def pytorch_attention_enabled_vae() -> bool:
    return True


def pytorch_attention_flash_attention() -> bool:
    return is_nvidia() or is_amd()


def force_upcast_attention_dtype() -> dict[torch.dtype, torch.dtype] | None:
    return None


def intermediate_dtype() -> torch.dtype:
    """The dtype of values passed between nodes: float32."""
    return torch.float32


def supports_dtype(device: Any, dtype: torch.dtype) -> bool:
    """Whether ``device`` computes in ``dtype`` at full speed."""
    return _supports(as_device(device), dtype)


def supports_cast(device: Any, dtype: torch.dtype) -> bool:
    """Whether weights stored in ``dtype`` can be cast on ``device`` as layers run (fp8 needs a GPU)."""
    if dtype in (torch.float32, torch.float16, torch.bfloat16):
        return True
    fp8 = {getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name)}
    return dtype in fp8 and as_device(device).type == "cuda"


def supports_fp8_compute(device: Any = None) -> bool:
    device = as_device(device)
    if device.type != "cuda":
        return False
    return torch.cuda.get_device_capability(device) >= (8, 9)


def unet_manual_cast(weight_dtype: torch.dtype | None, inference_device: Any,
                     supported_dtypes: Any = (torch.float16, torch.bfloat16, torch.float32)) -> torch.dtype | None:
    """The dtype to compute in when weights stored in ``weight_dtype`` cannot be computed in as they are on
    ``inference_device``; ``None`` when they can."""
    if weight_dtype is None or weight_dtype in (torch.float32, torch.float64):
        return None
    device = as_device(inference_device)
    if weight_dtype in tuple(supported_dtypes) and _supports(device, weight_dtype):
        return None
    return compute_dtype(device, tuple(d for d in supported_dtypes if d != weight_dtype) or (torch.float32,))


def pick_weight_dtype(dtype: torch.dtype | None, fallback_dtype: torch.dtype, device: Any = None) -> torch.dtype:
    """``dtype`` when given, no larger than ``fallback_dtype`` and castable on ``device``; else the fallback."""
    if dtype is None or dtype_size(dtype) > dtype_size(fallback_dtype):
        return fallback_dtype
    return dtype if supports_cast(device, dtype) else fallback_dtype


def text_encoder_initial_device(load_device: Any, offload_device: Any, model_size: int = 0) -> Any:
    return offload_device


def device_supports_non_blocking(device: Any) -> bool:
    """Whether copies to ``device`` may be asynchronous (CUDA only, so a CPU result is never read too early)."""
    return as_device(device).type == "cuda"


def device_should_use_non_blocking(device: Any) -> bool:
    return device_supports_non_blocking(device)


def cast_to(weight: torch.Tensor, dtype: torch.dtype | None = None, device: Any = None, non_blocking: bool = False,
            copy: bool = False, stream: Any = None) -> torch.Tensor:
    """``weight`` on ``device`` in ``dtype`` (either ``None``: unchanged); ``copy`` forces a new tensor."""
    return weight.to(device=device, dtype=dtype, non_blocking=non_blocking, copy=copy)


def module_size(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers (tied weights once)."""
    return module_bytes(module)


def dtype_size(dtype: torch.dtype | None) -> int:
    """Bytes per element of ``dtype`` (4 for ``None``, as ComfyUI counts an unknown dtype)."""
    if dtype is None:
        return 4
    return torch.empty((), dtype=dtype).element_size()


def extra_reserved_memory() -> int:
    """Bytes Hearth's manager keeps free on the compute device beside the models (its headroom)."""
    manager = default_manager()
    return int(manager.reserve(manager.device))


def minimum_inference_memory() -> int:
    """Bytes a model evaluation needs at least beside its weights: ComfyUI's 0.8 GiB plus the headroom."""
    return int(0.8 * 1024 ** 3) + extra_reserved_memory()


def maximum_vram_for_weights(device: Any = None) -> int:
    """Bytes Hearth's manager may fill with weights on ``device``: its budget, less the minimum inference memory."""
    return max(0, int(default_manager().budget(device)) - minimum_inference_memory())


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def get_supported_float8_types() -> list[torch.dtype]:
    return list(FLOAT8_TYPES)


def is_ixuca() -> bool:
    return False


def amd_min_version(device: Any = None, min_rdna_version: int = 0) -> bool:
    return False  # Hearth does not tell AMD generations apart


def cpu_mode() -> bool:
    return cpu_state is CPUState.CPU


def mps_mode() -> bool:
    return cpu_state is CPUState.MPS


def sage_attention_enabled() -> bool:
    return False


def flash_attention_enabled() -> bool:
    return False


def force_channels_last() -> bool:
    return False


def extended_fp16_support() -> bool:
    return torch_version_numeric >= (2, 7)


def unet_inital_load_device(parameters: int, dtype: torch.dtype) -> torch.device:  # ComfyUI's spelling
    """Where a UNet's weights are first placed: the CPU; Hearth's manager moves them when they run."""
    return torch.device("cpu")


def offloaded_memory(loaded_models: Any, device: Any) -> int:
    """Bytes of the given loaded models' weights that are not on ``device``."""
    return sum(m.model_offloaded_memory() for m in loaded_models if m.device == as_device(device))


def use_more_memory(extra_memory: int, loaded_models: Any, device: Any) -> None:
    """Nothing to do: Hearth's manager decides how much of each model stays resident."""


def get_offload_stream(device: Any) -> None:
    return None  # no side streams (NUM_STREAMS is 1)


def sync_stream(device: Any, stream: Any) -> None:
    """Nothing to wait for: Hearth offloads on the current stream."""
