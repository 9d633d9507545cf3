"""ComfyUI's ``comfy_extras.nodes_align_your_steps`` module: ``AlignYourStepsScheduler``, the optimized sampling
schedules of Sabour et al. 2024, "Align Your Steps" (NVIDIA), for SD1, SDXL and SVD.

The ten-step tables are NVIDIA's published ones (three decimals); other step counts interpolate them linearly in log
sigma, as the paper's how-to does. ComfyUI keeps more decimals of the same tables, so its sigmas may differ in the
fourth digit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["NOISE_LEVELS", "AlignYourStepsScheduler", "loglinear_interp"]

NOISE_LEVELS = {
    "SD1": [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029],
    "SDXL": [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029],
    "SVD": [700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002],
}


def loglinear_interp(t_steps: list[float], num_steps: int) -> np.ndarray:
    """``num_steps`` values descending like ``t_steps``, interpolated linearly in their logarithm."""
    levels = np.log(np.asarray(t_steps, dtype=np.float64)[::-1])
    positions = np.linspace(0, 1, len(levels))
    return np.exp(np.interp(np.linspace(0, 1, num_steps), positions, levels))[::-1].copy()


class AlignYourStepsScheduler:
    """SIGMAS of the Align Your Steps schedule for a model family, ``steps`` long (the last ``steps * denoise`` of
    them with ``denoise < 1``), ending at 0."""

    CATEGORY = "sampling/custom_sampling/schedulers"
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {"required": {"model_type": (list(NOISE_LEVELS),),
                             "steps": ("INT", {"default": 10, "min": 1, "max": 10000}),
                             "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def get_sigmas(self, model_type: str, steps: int, denoise: float) -> tuple[torch.Tensor]:
        if denoise <= 0.0:
            return (torch.FloatTensor([]),)
        total = round(steps * denoise) if denoise < 1.0 else steps
        levels = NOISE_LEVELS[model_type]
        sigmas = np.asarray(levels) if steps + 1 == len(levels) else loglinear_interp(levels, steps + 1)
        sigmas = sigmas[-(total + 1):].copy()
        sigmas[-1] = 0.0
        return (torch.FloatTensor(sigmas),)
