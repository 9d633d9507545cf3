"""ComfyUI's ``comfy_extras.nodes_model_advanced`` module: the model-sampling nodes by ComfyUI's names (Hearth's
class where the registry has the node, a recorded stand-in otherwise), and the sampling classes and schedule helper
ComfyUI keeps here, which are ``comfy.model_sampling``'s (AnimateDiff maps ``LCM`` and subclasses
``ModelSamplingDiscreteDistilled`` at import)."""

from __future__ import annotations

from hearth_comfy_compat.comfy_nodes import node_exports
from hearth_comfy_compat.comfyui.comfy.model_sampling import (
    LCM,
    X0,
    ModelSamplingDiscreteDistilled,
    rescale_zero_terminal_snr_sigmas,
)

__all__ = ["LCM", "X0", "ModelSamplingDiscreteDistilled", "rescale_zero_terminal_snr_sigmas"]

__getattr__ = node_exports([
    "ModelSamplingDiscrete", "ModelSamplingContinuousEDM", "ModelSamplingContinuousV", "ModelSamplingStableCascade",
    "ModelSamplingSD3", "ModelSamplingAuraFlow", "ModelSamplingFlux", "RescaleCFG", "ModelComputeDtype",
])
