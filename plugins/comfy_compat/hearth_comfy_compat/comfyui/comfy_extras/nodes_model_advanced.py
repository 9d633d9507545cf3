"""ComfyUI's ``comfy_extras.nodes_model_advanced`` module: the model-sampling nodes by ComfyUI's names (Hearth's
class where the registry has the node, a recorded stand-in otherwise) and ``rescale_zero_terminal_snr_sigmas``."""

from __future__ import annotations

import torch

from hearth_comfy_compat.comfy_nodes import node_exports

__all__ = ["rescale_zero_terminal_snr_sigmas"]


def rescale_zero_terminal_snr_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    """A discrete schedule's sigmas rescaled so the last timestep has zero signal (Lin et al. 2024, Algorithm 1),
    its infinite sigma replaced by a large finite one (about 4519, ComfyUI's value) so samplers can start from it."""
    alphas_bar_sqrt = (1 / (sigmas.double() ** 2 + 1)).sqrt()
    first, last = alphas_bar_sqrt[0].clone(), alphas_bar_sqrt[-1].clone()
    alphas_bar_sqrt = (alphas_bar_sqrt - last) * first / (first - last)
    alphas_bar = alphas_bar_sqrt ** 2
    alphas_bar[-1] = 4.8973451890853435e-08  # ComfyUI's: sigma about 4519 at the last step
    return ((1 - alphas_bar) / alphas_bar).sqrt().to(sigmas.dtype)


__getattr__ = node_exports([
    "ModelSamplingDiscrete", "ModelSamplingContinuousEDM", "ModelSamplingContinuousV", "ModelSamplingStableCascade",
    "ModelSamplingSD3", "ModelSamplingAuraFlow", "ModelSamplingFlux", "RescaleCFG", "ModelComputeDtype",
])
