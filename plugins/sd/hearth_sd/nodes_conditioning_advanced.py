"""ComfyUI's "advanced/conditioning" nodes, same names and inputs: ConditioningZeroOut, ConditioningSetTimestepRange."""

from __future__ import annotations

from typing import Any

from .nodes_conditioning_area import with_options

Conditioning = list[list[Any]]


class ConditioningZeroOut:
    CATEGORY = "advanced/conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "zero_out"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning": ("CONDITIONING",)}}

    def zero_out(self, conditioning: Conditioning) -> tuple[Conditioning]:
        import torch

        out = []
        for cond, options in conditioning:
            options = dict(options)
            # What ComfyUI zeroes besides the embedding: the pooled output and ACE-Step's lyrics conditioning.
            for key in ("pooled_output", "conditioning_lyrics"):
                if options.get(key) is not None:
                    options[key] = torch.zeros_like(options[key])
            out.append([torch.zeros_like(cond), options])
        return (out,)


class ConditioningSetTimestepRange:
    CATEGORY = "advanced/conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "set_range"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "conditioning": ("CONDITIONING",),
            "start": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}),
            "end": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}),
        }}

    def set_range(self, conditioning: Conditioning, start: float, end: float) -> tuple[Conditioning]:
        # Fractions of the schedule, 0 = first step (ComfyUI's convention since it stopped storing 1 - x).
        return (with_options(conditioning, start_percent=start, end_percent=end),)


NODES: dict[str, type] = {cls.__name__: cls for cls in (ConditioningZeroOut, ConditioningSetTimestepRange)}
