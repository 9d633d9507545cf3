"""ComfyUI's ``comfy.model_management`` module: devices, dtypes, memory and interrupts from Hearth's model manager."""

from __future__ import annotations

from typing import Any

import torch

from hearth.core import context
from hearth.core.context import InterruptProcessing
from hearth.core.models.devices import (
    as_device,
    compute_dtype,
    device_name,
    memory_info,
    release_memory,
    supports_dtype,
)
from hearth.core.models.manager import default_manager

InterruptProcessingException = InterruptProcessing
OOM_EXCEPTION = torch.cuda.OutOfMemoryError
XFORMERS_IS_AVAILABLE = False  # Hearth's attention runs through torch's scaled_dot_product_attention


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
    return supports_dtype(as_device(device if device is not None else get_torch_device()), torch.float16)


def should_use_bf16(device: Any = None, model_params: int = 0, prioritize_performance: bool = True,
                    manual_cast: bool = False) -> bool:
    return supports_dtype(as_device(device if device is not None else get_torch_device()), torch.bfloat16)


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
