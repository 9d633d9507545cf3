"""LoraLoader and LoraLoaderModelOnly: ComfyUI's LoRA nodes, names, inputs and ranges included."""

from __future__ import annotations

from typing import Any

from .folders import lora_files, lora_path

STRENGTH = {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}


def _apply(model: Any, clip: Any, lora_name: str, strength_model: float, strength_clip: float) -> tuple[Any, Any]:
    if strength_model == 0 and strength_clip == 0:
        return model, clip  # nothing to do: not even the file is read
    # Imported here, so loading the plugin does not import torch.
    from .apply import load_lora_for_models, warn
    from .loading import load_lora

    lora = load_lora(lora_path(lora_name))
    if not lora.parsed.adapters and not lora.parsed.biases:
        raise ValueError(f"LoRA {lora_name}: no tensor of a LoRA format Hearth reads (kohya, diffusers/PEFT, "
                         f"LyCORIS); is it a LoRA? First keys: {', '.join(list(lora.parsed.problems)[:3])}")
    model, clip, report = load_lora_for_models(model, clip, lora.parsed, strength_model, strength_clip, lora.name)
    warn(report)
    return model, clip


class LoraLoader:
    """Apply a LoRA to the diffusion model and the text encoders, each at its own strength."""

    DISPLAY_NAME = "Load LoRA"
    CATEGORY = "loaders"
    RETURN_TYPES = ("MODEL", "CLIP")
    OUTPUT_TOOLTIPS = ("The modified diffusion model.", "The modified CLIP model.")
    FUNCTION = "load_lora"
    DESCRIPTION = ("LoRAs modify the diffusion and CLIP models, altering the way latents are denoised, such as "
                   "applying styles. Multiple LoRA nodes can be linked together.")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model the LoRA will be applied to."}),
            "clip": ("CLIP", {"tooltip": "The CLIP model the LoRA will be applied to."}),
            "lora_name": (lora_files(), {"tooltip": "The name of the LoRA."}),
            "strength_model": ("FLOAT", {**STRENGTH, "tooltip": "How strongly to modify the diffusion model. "
                                                                "This value can be negative."}),
            "strength_clip": ("FLOAT", {**STRENGTH, "tooltip": "How strongly to modify the CLIP model. "
                                                               "This value can be negative."}),
        }}

    def load_lora(self, model, clip, lora_name, strength_model, strength_clip):
        return _apply(model, clip, lora_name, strength_model, strength_clip)


class LoraLoaderModelOnly:
    """Apply a LoRA to the diffusion model only; its text encoder keys are skipped on purpose."""

    DISPLAY_NAME = "LoraLoaderModelOnly"
    CATEGORY = "loaders"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load_lora_model_only"
    DESCRIPTION = "Apply a LoRA to the diffusion model only."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "lora_name": (lora_files(),),
            "strength_model": ("FLOAT", STRENGTH),
        }}

    def load_lora_model_only(self, model, lora_name, strength_model):
        return (_apply(model, None, lora_name, strength_model, 0.0)[0],)


NODES = {"LoraLoader": LoraLoader, "LoraLoaderModelOnly": LoraLoaderModelOnly}
