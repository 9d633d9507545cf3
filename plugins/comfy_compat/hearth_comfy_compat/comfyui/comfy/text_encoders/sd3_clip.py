"""ComfyUI's ``comfy.text_encoders.sd3_clip``: SD3's three text encoders (CLIP-L, OpenCLIP bigG, T5-XXL).

The classes import and subclass with ComfyUI's signatures, so packs can test a CLIP's kind against them
(``isinstance(clip.cond_stage_model, SD3ClipModel)``). Hearth has no SD3 family: building an encoder, or the T5
tokenizer (a SentencePiece model ComfyUI ships), fails naming what is missing, recorded for ``comfy plugins``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hearth_comfy_compat import hook
from hearth_comfy_compat.comfyui.comfy import sd1_clip, sdxl_clip

__all__ = ["SD3ClipModel", "SD3Tokenizer", "T5XXLModel", "T5XXLTokenizer", "sd3_clip"]

_ISSUE = "Hearth has no SD3 family (its text encoders: CLIP-L, OpenCLIP bigG and T5-XXL)"


class T5XXLModel(sd1_clip.SDClipModel):
    """T5-XXL's encoder as SD3 and Flux read it."""

    def __init__(self, device: Any = "cpu", layer: str = "last", layer_idx: int | None = None, dtype: Any = None,
                 attention_mask: bool = False, model_options: Mapping[str, Any] | None = None) -> None:
        raise hook.lacking("comfy.text_encoders.sd3_clip.T5XXLModel()", _ISSUE)


class T5XXLTokenizer(sd1_clip.SDTokenizer):
    def __init__(self, embedding_directory: Any = None, tokenizer_data: Mapping[str, Any] | None = None,
                 min_length: int = 77, max_length: int = 99999999) -> None:
        raise hook.lacking("comfy.text_encoders.sd3_clip.T5XXLTokenizer()", f"{_ISSUE}: T5's SentencePiece "
                                                                             f"tokenizer is not in Hearth")


class SD3Tokenizer:
    """The three tokenizers: ``{"l": ..., "g": ..., "t5xxl": ...}``."""

    def __init__(self, embedding_directory: Any = None, tokenizer_data: Mapping[str, Any] | None = None) -> None:
        tokenizer_data = tokenizer_data or {}
        self.clip_l = sd1_clip.SDTokenizer(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data)
        self.clip_g = sdxl_clip.SDXLClipGTokenizer(embedding_directory=embedding_directory,
                                                   tokenizer_data=tokenizer_data)
        self.t5xxl = T5XXLTokenizer(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data)

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False, **kwargs: Any) -> dict[str, Any]:
        return {"g": self.clip_g.tokenize_with_weights(text, return_word_ids, **kwargs),
                "l": self.clip_l.tokenize_with_weights(text, return_word_ids, **kwargs),
                "t5xxl": self.t5xxl.tokenize_with_weights(text, return_word_ids, **kwargs)}

    def untokenize(self, token_weight_pair: list[tuple]) -> list[tuple]:
        return self.clip_g.untokenize(token_weight_pair)

    def state_dict(self) -> dict[str, Any]:
        return {}


class SD3ClipModel(torch.nn.Module):
    """SD3's encoders, each optional (``clip_l``, ``clip_g``, ``t5``)."""

    def __init__(self, clip_l: bool = True, clip_g: bool = True, t5: bool = True, dtype_t5: Any = None,
                 t5_attention_mask: bool = False, device: Any = "cpu", dtype: Any = None,
                 model_options: Mapping[str, Any] | None = None) -> None:
        raise hook.lacking("comfy.text_encoders.sd3_clip.SD3ClipModel()", _ISSUE)


def sd3_clip(clip_l: bool = True, clip_g: bool = True, t5: bool = True, dtype_t5: Any = None,
             t5xxl_scaled_fp8: Any = None, t5_attention_mask: bool = False) -> type:
    """ComfyUI's factory of an ``SD3ClipModel`` class bound to these options."""

    class SD3ClipModel_(SD3ClipModel):  # noqa: N801 - ComfyUI's name
        def __init__(self, device: Any = "cpu", dtype: Any = None, model_options: Mapping[str, Any] | None = None):
            super().__init__(clip_l=clip_l, clip_g=clip_g, t5=t5, dtype_t5=dtype_t5,
                             t5_attention_mask=t5_attention_mask, device=device, dtype=dtype,
                             model_options=model_options)

    return SD3ClipModel_
