"""ComfyUI's ``comfy_extras.nodes_custom_sampler`` module: the custom-sampling nodes (SamplerCustom, the schedulers,
guiders, noise) are the classes Hearth's node registry holds under their names; ``Noise_RandomNoise`` and
``Noise_EmptyNoise`` are the NOISE objects packs build directly. A node Hearth lacks is a recorded stand-in."""

from __future__ import annotations

from typing import Any

from hearth_comfy_compat.comfy_nodes import node_exports

__all__ = ["Noise_EmptyNoise", "Noise_RandomNoise"]


class Noise_RandomNoise:  # noqa: N801 - ComfyUI's name
    """NOISE from a seed: ``generate_noise(latent)`` gives the noise Hearth's KSampler draws for that seed (one
    item of a batch regenerates alone through the LATENT's ``batch_index``)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def generate_noise(self, input_latent: dict[str, Any]) -> Any:
        from hearth_comfy_compat.comfy_sample import prepare_noise

        return prepare_noise(input_latent["samples"], self.seed, input_latent.get("batch_index"))


class Noise_EmptyNoise:  # noqa: N801 - ComfyUI's name
    """NOISE of zeros: sampling adds nothing to the latent (DisableNoise)."""

    def __init__(self) -> None:
        self.seed = 0

    def generate_noise(self, input_latent: dict[str, Any]) -> Any:
        import torch

        samples = input_latent["samples"]
        return torch.zeros(samples.shape, dtype=samples.dtype, layout=samples.layout, device="cpu")


__getattr__ = node_exports([
    "SamplerCustom", "SamplerCustomAdvanced", "KSamplerSelect", "BasicScheduler", "KarrasScheduler",
    "ExponentialScheduler", "PolyexponentialScheduler", "LaplaceScheduler", "VPScheduler", "BetaSamplingScheduler",
    "SDTurboScheduler", "SplitSigmas", "SplitSigmasDenoise", "FlipSigmas", "SetFirstSigma", "ExtendIntermediateSigmas",
    "SamplingPercentToSigma", "SamplerEulerAncestral", "SamplerEulerAncestralCFGPP", "SamplerLMS",
    "SamplerDPMPP_3M_SDE", "SamplerDPMPP_2M_SDE", "SamplerDPMPP_SDE", "SamplerDPMPP_2S_Ancestral",
    "SamplerDPMAdaptative", "SamplerER_SDE", "SamplerSASolver", "CFGGuider", "DualCFGGuider", "BasicGuider",
    "RandomNoise", "DisableNoise", "AddNoise",
])
