"""ComfyUI's ``comfy_extras.nodes_differential_diffusion`` module: ``DifferentialDiffusion``, inpainting with a soft
mask as a per-step threshold (Levin & Fried 2023, "Differential Diffusion"), over the MODEL's
``denoise_mask_function`` that Hearth's samplers call each step."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["DifferentialDiffusion"]


class DifferentialDiffusion:
    """A MODEL whose inpainting mask is thresholded by the progress through the schedule: early steps change only
    where the mask is near 1, later steps reach down to its lower values, so a soft mask becomes a gradual edit.
    ``strength`` below 1 blends the thresholded mask with the soft one."""

    CATEGORY = "_for_testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {"required": {"model": ("MODEL",)},
                "optional": {"strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def apply(self, model: Any, strength: float = 1.0) -> tuple[Any]:
        model = model.clone()
        model.set_model_denoise_mask_function(lambda sigma, mask, extra_options: self.forward(
            sigma, mask, extra_options, strength))
        return (model,)

    def forward(self, sigma: torch.Tensor, denoise_mask: torch.Tensor, extra_options: dict[str, Any],
                strength: float = 1.0) -> torch.Tensor:
        """The mask for the step at ``sigma``: 1 where the soft mask reaches the share of the schedule still
        ahead (measured in timesteps), else 0."""
        sampling = extra_options["model"].inner_model.model_sampling
        sigmas = extra_options["sigmas"]
        sigma_to = max(float(sampling.sigma_min), float(sigmas[-1]))
        ts_from = sampling.timestep(sigmas[0].reshape(1))
        ts_to = sampling.timestep(torch.tensor([sigma_to]))
        ts_now = sampling.timestep(sigma.reshape(-1)[:1])
        threshold = ((ts_now - ts_to) / (ts_from - ts_to)).to(denoise_mask.device)
        binary = (denoise_mask >= threshold).to(denoise_mask.dtype)
        if strength >= 1:
            return binary
        return binary * strength + denoise_mask * (1 - strength)
