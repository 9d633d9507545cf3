"""ComfyUI's ``comfy.sdxl_clip``: SDXL's two tokenizers (CLIP-L and OpenCLIP bigG) and its text-encoder classes.

The tokenizers are real (:mod:`comfy.sd1_clip`'s :class:`SDTokenizer`; bigG pads with 0 instead of the end
token and takes 1280-wide embeddings). The encoder classes import and subclass with ComfyUI's signatures, and
packs test Hearth's values against them; constructing one needs ComfyUI's own CLIP transformer, which Hearth does
not have (see :mod:`comfy.sd1_clip`), and fails naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hearth_comfy_compat.comfyui.comfy import sd1_clip

__all__ = ["SDXLClipG", "SDXLClipGTokenizer", "SDXLClipModel", "SDXLRefinerClipModel", "SDXLTokenizer",
           "StableCascadeClipG", "StableCascadeClipGTokenizer", "StableCascadeClipModel", "StableCascadeTokenizer"]


class SDXLClipG(sd1_clip.SDClipModel):
    """OpenCLIP bigG as SDXL reads it: the penultimate layer, without the final layer norm."""

    _hearth_encoders = frozenset({"g"})  # Hearth's SDXL / refiner CLIP's cond_stage_model.clip_g is one

    def __init__(self, device: Any = "cpu", max_length: int = 77, freeze: bool = True, layer: str = "penultimate",
                 layer_idx: int | None = None, dtype: Any = None, model_options: Mapping[str, Any] | None = None):
        if layer == "penultimate":
            layer, layer_idx = "hidden", -2
        super().__init__(device=device, freeze=freeze, layer=layer, layer_idx=layer_idx, dtype=dtype,
                         special_tokens={"start": 49406, "end": 49407, "pad": 0}, layer_norm_hidden_state=False,
                         return_projected_pooled=True, model_options=model_options)


class SDXLClipGTokenizer(sd1_clip.SDTokenizer):
    def __init__(self, tokenizer_path: str | None = None, embedding_directory: Any = None,
                 tokenizer_data: Mapping[str, Any] | None = None) -> None:
        super().__init__(tokenizer_path, pad_with_end=False, embedding_directory=embedding_directory,
                         embedding_size=1280, embedding_key="clip_g", tokenizer_data=tokenizer_data)


class SDXLTokenizer:
    """``tokenize_with_weights(text)`` -> ``{"g": windows, "l": windows}`` (bigG's padded with 0)."""

    def __init__(self, embedding_directory: Any = None, tokenizer_data: Mapping[str, Any] | None = None) -> None:
        tokenizer_data = tokenizer_data or {}
        clip_l = tokenizer_data.get("clip_l_tokenizer_class", sd1_clip.SDTokenizer)
        self.clip_l = clip_l(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data)
        self.clip_g = SDXLClipGTokenizer(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data)

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False, **kwargs: Any) -> dict[str, Any]:
        return {"g": self.clip_g.tokenize_with_weights(text, return_word_ids, **kwargs),
                "l": self.clip_l.tokenize_with_weights(text, return_word_ids, **kwargs)}

    def untokenize(self, token_weight_pair: list[tuple]) -> list[tuple]:
        return self.clip_g.untokenize(token_weight_pair)

    def state_dict(self) -> dict[str, Any]:
        return {}


class SDXLClipModel(torch.nn.Module, metaclass=sd1_clip._TextEncoderMeta):
    """SDXL's pair of encoders: CLIP-L's states and bigG's side by side, bigG's pooled output (Hearth's SDXL CLIP's
    ``cond_stage_model`` is one)."""

    _hearth_families = frozenset({"sdxl"})

    def __init__(self, device: Any = "cpu", dtype: Any = None, model_options: Mapping[str, Any] | None = None):
        super().__init__()
        model_options = model_options or {}
        clip_l = model_options.get("clip_l_class", sd1_clip.SDClipModel)
        self.clip_l = clip_l(layer="hidden", layer_idx=-2, device=device, dtype=dtype, layer_norm_hidden_state=False,
                             model_options=model_options)
        self.clip_g = SDXLClipG(device=device, dtype=dtype, model_options=model_options)
        self.dtypes = {dtype}

    def set_clip_options(self, options: Mapping[str, Any]) -> None:
        self.clip_l.set_clip_options(options)
        self.clip_g.set_clip_options(options)

    def reset_clip_options(self) -> None:
        self.clip_g.reset_clip_options()
        self.clip_l.reset_clip_options()

    def encode_token_weights(self, token_weight_pairs: Mapping[str, Any]) -> tuple[Any, Any]:
        g_out, g_pooled = self.clip_g.encode_token_weights(token_weight_pairs["g"])[:2]
        l_out, _ = self.clip_l.encode_token_weights(token_weight_pairs["l"])[:2]
        cut = min(l_out.shape[1], g_out.shape[1])
        return torch.cat([l_out[:, :cut], g_out[:, :cut]], dim=-1), g_pooled

    def load_sd(self, sd: Mapping[str, Any]) -> Any:
        if "text_model.encoder.layers.30.mlp.fc1.weight" in sd:
            return self.clip_g.load_sd(sd)
        return self.clip_l.load_sd(sd)


class SDXLRefinerClipModel(sd1_clip.SD1ClipModel):
    """The SDXL refiner's single bigG encoder (Hearth's refiner CLIP's ``cond_stage_model`` is one)."""

    _hearth_families = frozenset({"sdxl_refiner"})

    def __init__(self, device: Any = "cpu", dtype: Any = None, model_options: Mapping[str, Any] | None = None):
        super().__init__(device=device, dtype=dtype, clip_name="g", clip_model=SDXLClipG, model_options=model_options)


class StableCascadeClipGTokenizer(sd1_clip.SDTokenizer):
    def __init__(self, tokenizer_path: str | None = None, embedding_directory: Any = None,
                 tokenizer_data: Mapping[str, Any] | None = None) -> None:
        super().__init__(tokenizer_path, pad_with_end=True, embedding_directory=embedding_directory,
                         embedding_size=1280, embedding_key="clip_g", tokenizer_data=tokenizer_data)


class StableCascadeTokenizer(sd1_clip.SD1Tokenizer):
    def __init__(self, embedding_directory: Any = None, tokenizer_data: Mapping[str, Any] | None = None) -> None:
        super().__init__(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data, clip_name="g",
                         tokenizer=StableCascadeClipGTokenizer)


class StableCascadeClipG(sd1_clip.SDClipModel):
    def __init__(self, device: Any = "cpu", max_length: int = 77, freeze: bool = True, layer: str = "hidden",
                 layer_idx: int | None = -1, dtype: Any = None, model_options: Mapping[str, Any] | None = None):
        super().__init__(device=device, freeze=freeze, layer=layer, layer_idx=layer_idx, dtype=dtype,
                         special_tokens={"start": 49406, "end": 49407, "pad": 49407}, layer_norm_hidden_state=False,
                         enable_attention_masks=True, return_projected_pooled=True, model_options=model_options)


class StableCascadeClipModel(sd1_clip.SD1ClipModel):
    def __init__(self, device: Any = "cpu", dtype: Any = None, model_options: Mapping[str, Any] | None = None):
        super().__init__(device=device, dtype=dtype, clip_name="g", clip_model=StableCascadeClipG,
                         model_options=model_options)
