"""Hearth's LoRA plugin: LoRA, LoCon, LoHa, LoKr and DoRA files applied to models as weight patches.

``load_lora(path)`` reads and caches a file; ``load_lora_for_models(model, clip, lora.parsed, strength_model,
strength_clip)`` returns patched clones; ``LoraLoader`` / ``LoraLoaderModelOnly`` are the nodes.
"""

from .apply import LoraReport, load_lora_for_models, patch_parts
from .loading import LoraFile, load_lora

__all__ = ["LoraFile", "LoraReport", "load_lora", "load_lora_for_models", "patch_parts"]
