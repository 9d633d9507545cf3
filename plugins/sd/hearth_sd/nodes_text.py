"""Text nodes with ComfyUI's names, inputs and outputs: CLIPTextEncode, CLIPTextEncodeSDXL(Refiner), CLIPSetLastLayer.

They output CONDITIONING as ``docs/data-types.md`` shapes it: ``[[cond, {"pooled_output": pooled, ...}]]``, with
SDXL's size, crop and aesthetic-score values as options for the model to build its ADM vector from.
"""

from __future__ import annotations

from typing import Any

from hearth.core.images import MAX_RESOLUTION

PROMPT = ("STRING", {"multiline": True, "dynamicPrompts": True})
SIZE = ("INT", {"default": 1024, "min": 0, "max": MAX_RESOLUTION})
CROP = ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION})


def _require(clip: Any, node: str, encoders: set[str] | None = None) -> None:
    if clip is None:
        raise ValueError(f"{node}: the clip input is empty; if it comes from a checkpoint loader, that checkpoint "
                         f"holds no text encoder: load one with CLIPLoader")
    if encoders is not None and not encoders <= set(getattr(clip, "patchers", {})):
        raise ValueError(f"{node} needs a CLIP with the text encoder(s) {', '.join(sorted(encoders))} (an "
                         f"{'SDXL' if 'l' in encoders else 'SDXL refiner'} checkpoint's); this CLIP is "
                         f"{getattr(clip, 'family', type(clip).__name__)}'s: use CLIPTextEncode for it")


class CLIPTextEncode:
    DISPLAY_NAME = "CLIP Text Encode (Prompt)"
    CATEGORY = "conditioning"
    DESCRIPTION = "Encodes a text prompt using a CLIP model into an embedding that guides the diffusion model."
    RETURN_TYPES = ("CONDITIONING",)
    OUTPUT_TOOLTIPS = ("A conditioning containing the embedded text used to guide the diffusion model.",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "text": ("STRING", {**PROMPT[1], "tooltip": "The text to be encoded."}),
            "clip": ("CLIP", {"tooltip": "The CLIP model used for encoding the text."}),
        }}

    def encode(self, clip: Any, text: str) -> tuple[list]:
        _require(clip, "CLIPTextEncode")
        cond, pooled = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
        return ([[cond, {"pooled_output": pooled}]],)


class CLIPTextEncodeSDXL:
    DISPLAY_NAME = "CLIP Text Encode (SDXL)"
    CATEGORY = "advanced/conditioning"
    DESCRIPTION = ("Encodes dual text prompts (global text_g and local text_l) into conditioning formatted for SDXL, "
                   "incorporating crop and target resolution metadata.")
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        # ComfyUI's current order (the CLIP socket first; the widgets' order is unchanged, so saved workflows
        # load either way), crop_w/crop_h among the advanced widgets.
        crop = (CROP[0], {**CROP[1], "advanced": True})
        return {"required": {
            "clip": ("CLIP",), "width": SIZE, "height": SIZE, "crop_w": crop, "crop_h": crop,
            "target_width": SIZE, "target_height": SIZE, "text_g": PROMPT, "text_l": PROMPT,
        }}

    def encode(self, clip: Any, width: int, height: int, crop_w: int, crop_h: int, target_width: int,
               target_height: int, text_g: str, text_l: str) -> tuple[list]:
        _require(clip, "CLIPTextEncodeSDXL", {"l", "g"})
        # Each encoder reads its own prompt; the shorter token list is padded with empty chunks to the longer.
        cond, pooled = clip.encode_from_tokens(clip.tokenize_each({"g": text_g, "l": text_l}), return_pooled=True)
        options = {"pooled_output": pooled, "width": width, "height": height, "crop_w": crop_w, "crop_h": crop_h,
                   "target_width": target_width, "target_height": target_height}
        return ([[cond, options]],)


class CLIPTextEncodeSDXLRefiner:
    DISPLAY_NAME = "CLIP Text Encode (SDXL Refiner)"
    CATEGORY = "advanced/conditioning"
    DESCRIPTION = ("Encodes prompt text into conditioning specifically formatted for the SDXL Refiner model, "
                   "incorporating aesthetic score and image dimensions.")
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "ascore": ("FLOAT", {"default": 6.0, "min": 0.0, "max": 1000.0, "step": 0.01}),
            "width": SIZE, "height": SIZE,
            "text": PROMPT, "clip": ("CLIP",),
        }}

    def encode(self, clip: Any, ascore: float, width: int, height: int, text: str) -> tuple[list]:
        _require(clip, "CLIPTextEncodeSDXLRefiner", {"g"})
        cond, pooled = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
        return ([[cond, {"pooled_output": pooled, "aesthetic_score": ascore, "width": width, "height": height}]],)


class CLIPSetLastLayer:
    DISPLAY_NAME = "CLIP Set Last Layer"
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "set_last_layer"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "clip": ("CLIP",),
            "stop_at_clip_layer": ("INT", {"default": -1, "min": -24, "max": -1, "step": 1}),
        }}

    def set_last_layer(self, clip: Any, stop_at_clip_layer: int) -> tuple[Any]:
        _require(clip, "CLIPSetLastLayer")
        clip = clip.clone()  # the input may feed other nodes too: never change it
        clip.set_last_layer(stop_at_clip_layer)
        return (clip,)


NODES = {cls.__name__: cls for cls in (CLIPTextEncode, CLIPTextEncodeSDXL, CLIPTextEncodeSDXLRefiner, CLIPSetLastLayer)}
