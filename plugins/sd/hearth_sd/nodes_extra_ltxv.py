"""LTXV's model-free nodes with ComfyUI's names and inputs: LTXVConditioning, LTXVCropGuides and LTXVScheduler
(comfy_extras/nodes_lt.py).

None needs an LTXV model: LTXVConditioning records the frame rate an LTXV model reads from the conditioning,
LTXVCropGuides removes the guide frames LTXVAddGuide appended to a video latent (and forgets their positions),
so the sampled video comes back without them, and LTXVScheduler is LTXV's flow schedule: sigmas shifted by the
latent's token count and stretched to end at ``terminal``. Hearth has no LTXV model yet, so templates that use
these open and validate; a graph reaching an LTXV model still stops at its loader.
"""

from __future__ import annotations

from typing import Any

from .nodes_cond_guidance import conditioning_set_values

Conditioning = list[list[Any]]


class LTXVConditioning:
    CATEGORY = "conditioning/video_models"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "frame_rate": ("FLOAT", {"default": 25.0, "min": 0.0, "max": 1000.0, "step": 0.01}),
        }}

    def execute(self, positive: Conditioning, negative: Conditioning,
                frame_rate: float) -> tuple[Conditioning, Conditioning]:
        return (conditioning_set_values(positive, {"frame_rate": frame_rate}),
                conditioning_set_values(negative, {"frame_rate": frame_rate}))


def keyframe_count(conditioning: Conditioning) -> int:
    """How many guide frames LTXVAddGuide appended: the distinct start positions in the first entry that has
    ``keyframe_idxs`` (ComfyUI reads that value as ``[B, 3, tokens, 2]``, column 0 of the last axis the start)."""
    import torch

    for _, options in conditioning:
        idxs = options.get("keyframe_idxs")
        if idxs is not None:
            if not isinstance(idxs, torch.Tensor) or idxs.ndim != 4:
                raise ValueError("LTXVCropGuides: positive's keyframe_idxs is not the [B, 3, tokens, 2] tensor "
                                 "LTXVAddGuide writes; connect the conditioning LTXVAddGuide returned")
            return int(torch.unique(idxs[:, 0, :, 0]).shape[0])
    return 0


class LTXVCropGuides:
    CATEGORY = "conditioning/video_models"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "latent": ("LATENT",)}}

    def execute(self, positive: Conditioning, negative: Conditioning,
                latent: dict[str, Any]) -> tuple[Conditioning, Conditioning, dict[str, Any]]:
        import torch

        samples = latent.get("samples") if isinstance(latent, dict) else None
        if not isinstance(samples, torch.Tensor) or samples.ndim != 5:
            shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(latent).__name__
            raise ValueError(f"LTXVCropGuides: latent must be a video latent [B, C, frames, h, w], got {shape}; "
                             "connect the latent LTXVAddGuide returned")
        samples = samples.clone()
        mask = latent.get("noise_mask")
        # A latent without a mask is sampled everywhere: ComfyUI stands in a mask of ones, one value per frame.
        mask = (torch.ones(samples.shape[0], 1, samples.shape[2], 1, 1, dtype=torch.float32, device=samples.device)
                if mask is None else mask.clone())
        count = keyframe_count(positive)
        if count == 0:
            return positive, negative, {"samples": samples, "noise_mask": mask}
        if count >= samples.shape[2] or mask.ndim < 3:
            raise ValueError(f"LTXVCropGuides: the conditioning records {count} guide frame(s) but the latent has "
                             f"{samples.shape[2]} frame(s); connect the latent and conditioning of one LTXVAddGuide")
        samples = samples[:, :, :-count]
        mask = mask[:, :, :-count]
        return (conditioning_set_values(positive, {"keyframe_idxs": None}),
                conditioning_set_values(negative, {"keyframe_idxs": None}),
                {"samples": samples, "noise_mask": mask})


class LTXVScheduler:
    CATEGORY = "sampling/custom_sampling/schedulers"
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
            "max_shift": ("FLOAT", {"default": 2.05, "min": 0.0, "max": 100.0, "step": 0.01}),
            "base_shift": ("FLOAT", {"default": 0.95, "min": 0.0, "max": 100.0, "step": 0.01}),
            "stretch": ("BOOLEAN", {"default": True, "tooltip": "Stretch the sigmas to be in the range [terminal, 1]."}),
            "terminal": ("FLOAT", {"default": 0.1, "min": 0.0, "max": 0.99, "step": 0.01,
                                   "tooltip": "The terminal value of the sigmas after stretching."}),
        }, "optional": {"latent": ("LATENT",)}}

    def execute(self, steps: int, max_shift: float, base_shift: float, stretch: bool, terminal: float,
                latent: dict[str, Any] | None = None) -> tuple[Any]:
        import math

        import torch

        # The shift grows linearly with the latent's tokens (every axis after batch and channels), through
        # base_shift at 1024 tokens and max_shift at 4096; without a latent ComfyUI assumes 4096.
        tokens = 4096 if latent is None else math.prod(latent["samples"].shape[2:])
        slope = (max_shift - base_shift) / (4096 - 1024)
        shift = tokens * slope + (base_shift - slope * 1024)
        sigmas = torch.linspace(1.0, 0.0, steps + 1)
        sigmas = torch.where(sigmas != 0, math.exp(shift) / (math.exp(shift) + (1 / sigmas - 1)), 0)
        if stretch:
            # Scale 1 - sigma so the last non-zero sigma lands on `terminal`; the final 0 stays.
            live = sigmas != 0
            distance = 1.0 - sigmas[live]
            sigmas[live] = 1.0 - distance / (distance[-1] / (1.0 - terminal))
        return (sigmas,)


NODES = {cls.__name__: cls for cls in (LTXVConditioning, LTXVCropGuides, LTXVScheduler)}
