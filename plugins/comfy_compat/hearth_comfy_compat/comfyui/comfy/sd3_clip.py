"""ComfyUI's old ``comfy.sd3_clip`` path, where packs written before ComfyUI moved it still import from: the same
classes as :mod:`comfy.text_encoders.sd3_clip`."""

from __future__ import annotations

from hearth_comfy_compat.comfyui.comfy.text_encoders.sd3_clip import (
    SD3ClipModel,
    SD3Tokenizer,
    T5XXLModel,
    T5XXLTokenizer,
    sd3_clip,
)

__all__ = ["SD3ClipModel", "SD3Tokenizer", "T5XXLModel", "T5XXLTokenizer", "sd3_clip"]
