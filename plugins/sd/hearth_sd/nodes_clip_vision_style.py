"""Style model nodes with ComfyUI's names, inputs and outputs: StyleModelLoader and StyleModelApply.

StyleModelApply appends the style model's tokens (from a CLIP vision encoding) to every conditioning entry's text
tokens. ``strength_type`` "multiply" scales the tokens; "attn_bias" leaves them and records an attention bias of
log(strength) towards them in the entry's ``attention_mask`` (ComfyUI's layout, kept for the models that read it;
SD UNets ignore it in ComfyUI as in Hearth).
"""

from __future__ import annotations

from typing import Any

from hearth.core.model_folders import model_folders


class StyleModelLoader:
    DISPLAY_NAME = "Load Style Model"
    CATEGORY = "loaders"
    RETURN_TYPES = ("STYLE_MODEL",)
    FUNCTION = "load_style_model"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"style_model_name": (model_folders().list("style_models"),)}}

    def load_style_model(self, style_model_name: str) -> tuple[Any]:
        from hearth.core.models.loaders import NoModelLoaderError, load_model_file

        from .style_model import UnsupportedStyleModelError

        path = model_folders().find("style_models", style_model_name)
        try:
            return (load_model_file("style_models", path),)
        except (NoModelLoaderError, UnsupportedStyleModelError) as exc:
            raise ValueError(f"StyleModelLoader: style_model_name {style_model_name!r}: {exc}") from None


def _attention_bias(txt: Any, keys: dict[str, Any], added: int, bias: Any) -> dict[str, Any]:
    """ComfyUI's attention mask grown by ``added`` style tokens after the text: ``bias`` between them and the
    rest (the text and any reference-image tokens that follow), the old mask's quadrants kept."""
    import torch

    ref_h, ref_w = keys.get("attention_mask_img_shape", (1, 1))
    n_ref, n_txt = ref_h * ref_w, txt.shape[1]
    mask = keys.get("attention_mask")
    if mask is None:
        mask = torch.zeros((txt.shape[0], n_txt + n_ref, n_txt + n_ref), dtype=torch.float16)
    if mask.dtype == torch.bool:
        mask = torch.log(mask.to(dtype=torch.float16))  # True -> 0, False -> -inf: a bias
    size = n_txt + added + n_ref
    new = torch.zeros((txt.shape[0], size, size), dtype=torch.float16)
    new[:, :n_txt, :n_txt] = mask[:, :n_txt, :n_txt]
    new[:, :n_txt, n_txt + added:] = mask[:, :n_txt, n_txt:]
    new[:, n_txt + added:, :n_txt] = mask[:, n_txt:, :n_txt]
    new[:, n_txt + added:, n_txt + added:] = mask[:, n_txt:, n_txt:]
    new[:, :n_txt, n_txt:n_txt + added] = bias
    new[:, n_txt + added:, n_txt:n_txt + added] = bias
    return {**keys, "attention_mask": new.to(txt.device), "attention_mask_img_shape": (ref_h, ref_w)}


class StyleModelApply:
    DISPLAY_NAME = "Apply Style Model"
    CATEGORY = "conditioning/style_model"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "apply_stylemodel"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "conditioning": ("CONDITIONING",),
            "style_model": ("STYLE_MODEL",),
            "clip_vision_output": ("CLIP_VISION_OUTPUT",),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.001}),
            "strength_type": (["multiply", "attn_bias"],),
        }}

    def apply_stylemodel(self, conditioning: list, style_model: Any, clip_vision_output: Any,
                         strength: float = 1.0, strength_type: str = "multiply") -> tuple[list]:
        import torch

        if not hasattr(style_model, "get_cond"):
            raise ValueError("StyleModelApply: style_model is not a STYLE_MODEL; connect StyleModelLoader")
        if strength_type not in ("multiply", "attn_bias"):
            raise ValueError(f"StyleModelApply: strength_type must be 'multiply' or 'attn_bias', got {strength_type!r}")
        # Every image's tokens in a row, one sequence: [1, images * tokens, width].
        cond = style_model.get_cond(clip_vision_output).flatten(start_dim=0, end_dim=1).unsqueeze(dim=0)
        if strength_type == "multiply":
            cond = cond * strength
        added = cond.shape[1]
        out = []
        for txt, keys in conditioning:
            if txt.shape[-1] != cond.shape[-1]:
                raise ValueError(f"StyleModelApply: the style tokens are {cond.shape[-1]} wide, the conditioning's "
                                 f"text {txt.shape[-1]}: use a style model made for this model's text encoder")
            keys = dict(keys)
            if "attention_mask" in keys or (strength_type == "attn_bias" and strength != 1.0):
                # log(0) is -inf (no attention), which is what strength 0 means here.
                bias = torch.log(torch.tensor([strength if strength_type == "attn_bias" else 1.0]))
                keys = _attention_bias(txt, keys, added, bias)
            tokens = cond.to(txt.device, txt.dtype).expand(txt.shape[0], -1, -1)
            out.append([torch.cat((txt, tokens), dim=1), keys])
        return (out,)


NODES = {cls.__name__: cls for cls in (StyleModelLoader, StyleModelApply)}
