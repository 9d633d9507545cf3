"""Model weights and memory: loading checkpoints, detecting their architecture, and keeping devices within budget.

The public names below import lazily, so ``import hearth.core.models.formats`` (which plugins do to declare formats, and
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

    default_manager().ensure_loaded(lora, memory_required=lora.memory_required(x.shape, dtype))
    out = lora.module(x, ...)                           # weights patched, on the device or streamed

The contract every family's values share: :class:`ModelValue` (ComfyUI's ModelPatcher surface, subclassed by each
family's MODEL / CLIP / VAE), :func:`load_once` (one load cache: a file read once while values hold it) and
:func:`load_model_file` (detect a file's format and hand it to the loader a plugin registered, as the generic
loader nodes of :mod:`hearth.core.models.loader_nodes` do).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ModelFormat": "hearth.core.models.formats",
    "CheckpointError": "hearth.core.models.loading",
    "CheckpointHeader": "hearth.core.models.loading",
    "TensorInfo": "hearth.core.models.loading",
    "read_header": "hearth.core.models.loading",
    "load_state_dict": "hearth.core.models.loading",
    "strip_prefix": "hearth.core.models.loading",
    "write_safetensors": "hearth.core.models.loading",
    "detect": "hearth.core.models.detection",
    "detect_with_plugins": "hearth.core.models.detection",
    "UnknownModelError": "hearth.core.models.detection",
    "AmbiguousModelError": "hearth.core.models.detection",
    "compute_dtype": "hearth.core.models.devices",
    "default_device": "hearth.core.models.devices",
    "release_memory": "hearth.core.models.devices",
    "PatchedModel": "hearth.core.models.patches",
    "PatchError": "hearth.core.models.patches",
    "WeightPatch": "hearth.core.models.patches",
    "ModelManager": "hearth.core.models.manager",
    "ModelTooLargeError": "hearth.core.models.manager",
    "load_into": "hearth.core.models.loading",
    "default_manager": "hearth.core.models.manager",
    "ModelValue": "hearth.core.models.model_value",
    "Loaded": "hearth.core.models.file_cache",
    "LoadCache": "hearth.core.models.file_cache",
    "file_identity": "hearth.core.models.file_cache",
    "load_cache": "hearth.core.models.file_cache",
    "load_once": "hearth.core.models.file_cache",
    "load_model_file": "hearth.core.models.loaders",
    "model_loaders": "hearth.core.models.loaders",
    "NoModelLoaderError": "hearth.core.models.loaders",
}

__all__ = [
    "AmbiguousModelError",
    "CheckpointError",
    "CheckpointHeader",
    "LoadCache",
    "Loaded",
    "ModelFormat",
    "ModelManager",
    "ModelTooLargeError",
    "ModelValue",
    "NoModelLoaderError",
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
    "file_identity",
    "load_cache",
    "load_into",
    "load_model_file",
    "load_once",
    "load_state_dict",
    "model_loaders",
    "read_header",
    "release_memory",
    "strip_prefix",
    "write_safetensors",
]

if TYPE_CHECKING:
    from hearth.core.models.detection import (
        AmbiguousModelError,
        UnknownModelError,
        detect,
        detect_with_plugins,
    )
    from hearth.core.models.devices import compute_dtype, default_device, release_memory
    from hearth.core.models.file_cache import LoadCache, Loaded, file_identity, load_cache, load_once
    from hearth.core.models.formats import ModelFormat
    from hearth.core.models.loaders import NoModelLoaderError, load_model_file, model_loaders
    from hearth.core.models.loading import (
        CheckpointError,
        CheckpointHeader,
        TensorInfo,
        load_into,
        load_state_dict,
        read_header,
        strip_prefix,
        write_safetensors,
    )
    from hearth.core.models.manager import (
        ModelManager,
        ModelTooLargeError,
        default_manager,
    )
    from hearth.core.models.model_value import ModelValue
    from hearth.core.models.patches import PatchedModel, PatchError, WeightPatch


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hearth.core.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
