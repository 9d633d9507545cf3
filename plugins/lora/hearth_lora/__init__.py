"""Hearth's LoRA plugin: LoRA, LoCon, LoHa, LoKr and DoRA files applied to models as weight patches.

``load_lora(path)`` reads and caches a file; ``load_lora_for_models(model, clip, lora.parsed, strength_model,
strength_clip)`` returns patched clones; ``LoraLoader`` / ``LoraLoaderModelOnly`` are the nodes.
"""

from typing import Any

__all__ = ["LoraFile", "LoraReport", "load_lora", "load_lora_for_models", "patch_parts"]

# The public names load on first use (PEP 562): they import torch, which a run whose graph has no LoRA need not.
_LAZY = {"LoraFile": ".loading", "load_lora": ".loading", "LoraReport": ".apply",
         "load_lora_for_models": ".apply", "patch_parts": ".apply"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
