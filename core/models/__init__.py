"""Model weights and memory: loading checkpoints, detecting their architecture, and keeping devices within budget.

The public names below import lazily, so ``import core.models.formats`` (which plugins do to declare formats, and
which the executor may do at start) never imports torch.

How a model plugin uses it::

    header = read_header(path)                          # keys, shapes, metadata; no tensor read
    family = detect_with_plugins(header, plugins)       # resolve_model_format, then the sentinel tables
    state = load_state_dict(path)                       # memory-mapped, in the stored dtype
    with torch.device("meta"):
        unet = UNet(config)                             # no memory until the weights are assigned
    load_into(unet, state, prefix="model.diffusion_model.", source=path)
    model = PatchedModel(unet, name=path.name, memory_estimate=estimate)   # what MODEL outputs carry

    lora = model.clone()                                # a LoRA node: no weight copied
    lora.add_patches({"input_blocks.1.1.proj_in.weight": delta}, strength=0.8, source="style.safetensors")

    default_manager().load(lora, memory_required=lora.memory_required(x.shape, dtype))
    out = lora.module(x, ...)                           # weights patched, on the device or streamed
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ModelFormat": "core.models.formats",
    "CheckpointError": "core.models.loading",
    "CheckpointHeader": "core.models.loading",
    "TensorInfo": "core.models.loading",
    "read_header": "core.models.loading",
    "load_state_dict": "core.models.loading",
    "strip_prefix": "core.models.loading",
    "write_safetensors": "core.models.loading",
    "detect": "core.models.detection",
    "detect_with_plugins": "core.models.detection",
    "UnknownModelError": "core.models.detection",
    "AmbiguousModelError": "core.models.detection",
    "compute_dtype": "core.models.devices",
    "default_device": "core.models.devices",
    "release_memory": "core.models.devices",
    "PatchedModel": "core.models.patches",
    "PatchError": "core.models.patches",
    "WeightPatch": "core.models.patches",
    "ModelManager": "core.models.manager",
    "ModelTooLargeError": "core.models.manager",
    "load_into": "core.models.loading",
    "default_manager": "core.models.manager",
    "set_default_manager": "core.models.manager",
}

__all__ = [
    "AmbiguousModelError",
    "CheckpointError",
    "CheckpointHeader",
    "ModelFormat",
    "ModelManager",
    "ModelTooLargeError",
    "PatchError",
    "PatchedModel",
    "TensorInfo",
    "UnknownModelError",
    "WeightPatch",
    "compute_dtype",
    "default_device",
    "default_manager",
    "detect",
    "detect_with_plugins",
    "load_into",
    "load_state_dict",
    "read_header",
    "release_memory",
    "set_default_manager",
    "strip_prefix",
    "write_safetensors",
]

if TYPE_CHECKING:
    from core.models.detection import AmbiguousModelError, UnknownModelError, detect, detect_with_plugins
    from core.models.devices import compute_dtype, default_device, release_memory
    from core.models.formats import ModelFormat
    from core.models.loading import (
        CheckpointError,
        CheckpointHeader,
        TensorInfo,
        load_into,
        load_state_dict,
        read_header,
        strip_prefix,
        write_safetensors,
    )
    from core.models.manager import ModelManager, ModelTooLargeError, default_manager, set_default_manager
    from core.models.patches import PatchedModel, PatchError, WeightPatch


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
