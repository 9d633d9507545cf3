"""Post-CFG score rescaling nodes with ComfyUI's names (``comfy_extras/nodes_eps.py``): "Epsilon Scaling" and
TemporalScoreRescaling.

Epsilon Scaling (Ning et al. 2023, arXiv:2308.15321, uniform schedule) divides the guided noise prediction by a
constant to counter exposure bias. TSR (arXiv:2510.01184, eq. 6) scales the score by
``r = (snr * s^2 + 1) / (snr * s^2 / k + 1)``, which goes from 1 at pure noise to ``k`` at no noise.
"""

from __future__ import annotations

from typing import Any

CATEGORY = "model_patches/unet"


class EpsilonScaling:
    CATEGORY = CATEGORY
    DESCRIPTION = "Divides the guided noise prediction by scaling_factor each step (exposure-bias correction)."
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",),
                             "scaling_factor": ("FLOAT", {"default": 1.005, "min": 0.5, "max": 1.5, "step": 0.001,
                                                          "display": "number"})}}

    def execute(self, model, scaling_factor):
        from .nodes_guidance_patches import with_sampler_function

        factor = scaling_factor or 1e-9  # ComfyUI's guard against a division by zero

        def epsilon_scaling(args):
            x = args["input"]
            return x - (x - args["denoised"]) / factor

        return with_sampler_function("Epsilon Scaling", model, "sampler_post_cfg_function", epsilon_scaling)


def half_log_snr(sigma, sampling: Any):
    """``log(alpha / sigma)``: ``-log(sigma)`` for k-diffusion latents, ``log((1 - sigma) / sigma)`` for flow."""
    if getattr(sampling, "prediction", None) == "flow":
        return sigma.logit().neg()
    return sigma.log().neg()


def tsr_factor(snr, k: float, variance: float):
    """TSR's score ratio (eq. 6); ``k`` where the SNR is infinite."""
    import torch

    ratio = (snr * variance + 1) / (snr * variance / k + 1)
    return torch.where(torch.isposinf(snr), torch.full_like(ratio, k), ratio)


class TemporalScoreRescaling:
    CATEGORY = CATEGORY
    DISPLAY_NAME = "TSR - Temporal Score Rescaling"
    DESCRIPTION = ("[Post-CFG Function]\nTSR - Temporal Score Rescaling (2510.01184)\n\nRescaling the model's score or "
                   "noise to steer the sampling diversity.\n")
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("patched_model",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "tsr_k": ("FLOAT", {"default": 0.95, "min": 0.01, "max": 100.0, "step": 0.001, "display": "number",
                                "tooltip": "Controls the rescaling strength.\nLower k produces more detailed results; "
                                           "higher k produces smoother results in image generation. Setting k = 1 "
                                           "disables rescaling."}),
            "tsr_sigma": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 100.0, "step": 0.001, "display": "number",
                                    "tooltip": "Controls how early rescaling takes effect.\nLarger values take effect "
                                               "earlier."}),
        }}

    def execute(self, model, tsr_k, tsr_sigma):
        import torch

        from .nodes_guidance_patches import add_sampler_function, clone_for_patch

        variance = tsr_sigma**2
        patched = clone_for_patch("TemporalScoreRescaling", model)

        def rescale(args):
            denoised, x, sigma = args["denoised"], args["input"], args["sigma"]
            if tsr_k == 1 or bool((sigma == 0).all()):
                return denoised
            view = args["model"]
            sampling = getattr(view, "model_sampling", None) or getattr(patched, "sampling", None)
            level = half_log_snr(sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype), sampling)
            snr = (2 * level).exp()
            if bool((snr == 0).all()):
                return denoised
            # The latent's signal scale alpha = sigma * e^level (1 for k-diffusion latents, 1 - sigma for flow).
            alpha = sigma.reshape(level.shape).to(x.dtype) * level.exp()
            return torch.lerp(x / alpha, denoised, tsr_factor(snr, tsr_k, variance))

        add_sampler_function(patched, "sampler_post_cfg_function", rescale)
        return (patched,)


NODES = {"Epsilon Scaling": EpsilonScaling, "TemporalScoreRescaling": TemporalScoreRescaling}
