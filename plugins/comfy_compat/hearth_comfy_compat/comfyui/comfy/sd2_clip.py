"""ComfyUI's ``comfy.sd2_clip``: SD2's OpenCLIP ViT-H tokenizer and text-encoder classes.

The tokenizer is real (:mod:`comfy.sd1_clip`'s, padding with 0 and taking 1024-wide embeddings); the encoder
classes import and subclass with ComfyUI's signatures, and constructing one fails naming ComfyUI's CLIP
transformer, which Hearth does not have (its SD2 text encoder comes from files through its SD plugin).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hearth_comfy_compat.comfyui.comfy import sd1_clip

__all__ = ["SD2ClipHModel", "SD2ClipHTokenizer", "SD2ClipModel", "SD2Tokenizer"]


class SD2ClipHModel(sd1_clip.SDClipModel):
    """OpenCLIP ViT-H as SD2 reads it: the penultimate layer, end token 49407, padding 0."""

    _hearth_encoders = frozenset({"h"})  # Hearth's SD2 CLIP's cond_stage_model.clip_h is one

    def __init__(self, arch: str = "ViT-H-14", device: Any = "cpu", max_length: int = 77, freeze: bool = True,
                 layer: str = "penultimate", layer_idx: int | None = None, dtype: Any = None,
                 model_options: Mapping[str, Any] | None = None) -> None:
        if layer == "penultimate":
            layer, layer_idx = "hidden", -2
        super().__init__(device=device, freeze=freeze, layer=layer, layer_idx=layer_idx, dtype=dtype,
                         special_tokens={"start": 49406, "end": 49407, "pad": 0}, return_projected_pooled=True,
                         model_options=model_options)


class SD2ClipHTokenizer(sd1_clip.SDTokenizer):
    def __init__(self, tokenizer_path: str | None = None, embedding_directory: Any = None,
                 tokenizer_data: Mapping[str, Any] | None = None) -> None:
        super().__init__(tokenizer_path, pad_with_end=False, embedding_directory=embedding_directory,
                         embedding_size=1024, embedding_key="clip_h", tokenizer_data=tokenizer_data)


class SD2Tokenizer(sd1_clip.SD1Tokenizer):
    """``tokenize_with_weights(text)`` -> ``{"h": windows}``."""

    def __init__(self, embedding_directory: Any = None, tokenizer_data: Mapping[str, Any] | None = None) -> None:
        super().__init__(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data, clip_name="h",
                         tokenizer=SD2ClipHTokenizer)


class SD2ClipModel(sd1_clip.SD1ClipModel):
    """SD2's text side: OpenCLIP ViT-H as ``clip_h`` (Hearth's SD2 CLIP's ``cond_stage_model`` is one)."""

    _hearth_families = frozenset({"sd2"})

    def __init__(self, device: Any = "cpu", dtype: Any = None, model_options: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(device=device, dtype=dtype, model_options=model_options, clip_name="h",
                         clip_model=SD2ClipHModel, **kwargs)
