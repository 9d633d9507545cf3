"""UNetTemporalAttentionMultiply with ComfyUI's name and inputs (comfy_extras/nodes_attention_multiply.py): scale the
output projections of a UNet's attention layers, spatial and temporal apart.

Every ``attn1.to_out.0`` (self-attention) and ``attn2.to_out.0`` (cross-attention) weight and bias is multiplied
by its factor: the ``time_stack`` ones (a video UNet's temporal layers) by the temporal factors, the others by the
structural ones. As in ComfyUI these are weight patches on a clone (``weight * factor``, no delta), so the factors
stack with LoRAs and the loaded model is untouched; an SD1/SDXL UNet has no temporal layers, so there only the
structural factors act.
"""

from __future__ import annotations

from typing import Any

_FACTOR = {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}


class UNetTemporalAttentionMultiply:
    CATEGORY = "_for_testing/attention_experiments"
    EXPERIMENTAL = True
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "self_structural": ("FLOAT", _FACTOR),
                             "self_temporal": ("FLOAT", _FACTOR), "cross_structural": ("FLOAT", _FACTOR),
                             "cross_temporal": ("FLOAT", _FACTOR)}}

    def execute(self, model: Any, self_structural: float, self_temporal: float, cross_structural: float,
                cross_temporal: float) -> tuple[Any]:
        import torch

        if not all(callable(getattr(model, name, None)) for name in ("clone", "model_state_dict", "add_patches")):
            raise ValueError(f"UNetTemporalAttentionMultiply: model is not a MODEL with weights to patch "
                             f"({type(model).__name__}); connect a checkpoint or diffusion-model loader's MODEL")
        patched = model.clone()
        for key, weight in model.model_state_dict().items():
            if not key.endswith(("to_out.0.weight", "to_out.0.bias")):
                continue
            temporal = ".time_stack." in key
            if ".attn1." in key:
                factor = self_temporal if temporal else self_structural
            elif ".attn2." in key:
                factor = cross_temporal if temporal else cross_structural
            else:
                continue
            # weight * factor + 0 * delta: a zero delta that takes no memory (one value seen in every position).
            zero = torch.zeros((), dtype=weight.dtype).expand(weight.shape)
            patched.add_patches({key: (zero,)}, 0.0, factor)
        return (patched,)


NODES = {"UNetTemporalAttentionMultiply": UNetTemporalAttentionMultiply}
