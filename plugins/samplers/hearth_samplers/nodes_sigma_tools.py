"""SIGMAS editing nodes with ComfyUI's names: ManualSigmas, SetFirstSigma, SplitSigmasDenoise,
ExtendIntermediateSigmas and SamplingPercentToSigma.

They follow ComfyUI's definitions in ``comfy_extras/nodes_custom_sampler.py``, quirks included: ManualSigmas reads
every number in the text with ComfyUI's pattern (so ``1e-3`` reads as 1 and -3, as there), and SplitSigmasDenoise
with a denoise that rounds to 0 steps gives an empty high part. Inputs are never changed in place (the executor
caches them).
"""

from __future__ import annotations

import re
from typing import Any

CATEGORY = "sampling/sigmas"
# ComfyUI's number pattern for ManualSigmas: an optional sign, digits, optional dots, digits.
_NUMBER = re.compile(r"[-+]?(?:\d*\.*\d+)")


class ManualSigmas:
    CATEGORY = "experimental/custom_sampling"
    EXPERIMENTAL = True
    DESCRIPTION = "A schedule typed as numbers (\"1, 0.5, 0\"): every number in the text, in order."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"sigmas": ("STRING", {"default": "1, 0.5", "multiline": False})}}

    def execute(self, sigmas):
        import torch

        return (torch.tensor([float(n) for n in _NUMBER.findall(sigmas)], dtype=torch.float32),)


class SetFirstSigma:
    CATEGORY = CATEGORY
    DESCRIPTION = "The schedule with its first sigma replaced (e.g. a higher start for more variation)."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "set_first_sigma"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"sigmas": ("SIGMAS",),
                             "sigma": ("FLOAT", {"default": 136.0, "min": 0.0, "max": 20000.0, "step": 0.001,
                                                 "round": False})}}

    def set_first_sigma(self, sigmas, sigma):
        if len(sigmas) == 0:
            raise ValueError("SetFirstSigma: the sigmas input is empty; connect a schedule with at least one sigma")
        sigmas = sigmas.clone()
        sigmas[0] = sigma
        return (sigmas,)


class SplitSigmasDenoise:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Splits a schedule so the low part has round(steps * denoise) steps; the split sigma ends the high "
                   "part and starts the low one.")
    RETURN_TYPES = ("SIGMAS", "SIGMAS")
    RETURN_NAMES = ("high_sigmas", "low_sigmas")
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"sigmas": ("SIGMAS",),
                             "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def get_sigmas(self, sigmas, denoise):
        steps = max(sigmas.shape[-1] - 1, 0)
        low_steps = round(steps * denoise)
        # sigmas[:-0] is empty: at 0 low steps ComfyUI gives an empty high part too, and so does this.
        return (sigmas[:-low_steps], sigmas[-(low_steps + 1):])


class ExtendIntermediateSigmas:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Adds steps - 1 sigmas inside each interval whose upper sigma lies between end_at_sigma and "
                   "start_at_sigma (-1: no upper bound), spaced linearly, or denser near one end.")
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "extend"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "sigmas": ("SIGMAS",),
            "steps": ("INT", {"default": 2, "min": 1, "max": 100}),
            "start_at_sigma": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 20000.0, "step": 0.01, "round": False}),
            "end_at_sigma": ("FLOAT", {"default": 12.0, "min": 0.0, "max": 20000.0, "step": 0.01, "round": False}),
            "spacing": (["linear", "cosine", "sine"],),
        }}

    def extend(self, sigmas, steps, start_at_sigma, end_at_sigma, spacing):
        import math

        import torch

        upper = float("inf") if start_at_sigma < 0 else start_at_sigma
        shapes = {"linear": lambda f: f, "cosine": lambda f: torch.sin(f * math.pi / 2),
                  "sine": lambda f: 1 - torch.cos(f * math.pi / 2)}
        if spacing not in shapes:
            raise ValueError(f"ExtendIntermediateSigmas: spacing must be one of {list(shapes)}, got {spacing!r}")
        fractions = shapes[spacing](torch.linspace(0, 1, steps + 1)[1:-1])
        out: list[float] = []
        for current, following in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
            out.append(current)
            if end_at_sigma <= current <= upper:
                out += (fractions * (following - current) + current).tolist()
        if len(sigmas):
            out.append(float(sigmas[-1]))
        return (torch.tensor(out, dtype=torch.float32),)


class SamplingPercentToSigma:
    CATEGORY = CATEGORY
    DESCRIPTION = ("The model's sigma at a fraction of the schedule (0: start, 1: end), as start/end percent inputs "
                   "use it; at 0 and 1 that is past either end unless return_actual_sigma.")
    RETURN_TYPES = ("FLOAT",)
    RETURN_NAMES = ("sigma_value",)
    FUNCTION = "get_sigma"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "sampling_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.0001}),
            "return_actual_sigma": ("BOOLEAN", {"default": False, "tooltip": (
                "Return the actual sigma value instead of the value used for interval checks.\n"
                "This only affects results at 0.0 and 1.0.")}),
        }}

    def get_sigma(self, model, sampling_percent, return_actual_sigma):
        from .schedules import percent_to_sigma

        sampling = model.sampling
        if return_actual_sigma and sampling_percent == 0.0:
            return (float(sampling.sigma_max),)
        if return_actual_sigma and sampling_percent == 1.0:
            return (float(sampling.sigma_min),)
        return (float(percent_to_sigma(sampling, sampling_percent)),)


NODES = {cls.__name__: cls for cls in (ManualSigmas, SetFirstSigma, SplitSigmasDenoise, ExtendIntermediateSigmas,
                                       SamplingPercentToSigma)}
