"""Custom sampling nodes with ComfyUI's names: SamplerCustom, SamplerCustomAdvanced, KSamplerSelect and AddNoise.

SamplerCustomAdvanced takes its parts from other nodes: NOISE and GUIDER (``nodes_guiders``), SAMPLER
(KSamplerSelect) and SIGMAS (``nodes_sigmas``).
"""

from __future__ import annotations

from typing import Any

from .installed import sampler_names
from .nodes_ksampler import MAX_SEED

CATEGORY = "sampling/custom_sampling"


def _run(noise, guider, sampler, sigmas, latent: dict[str, Any],
         seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sample ``latent`` with a GUIDER; returns (output, denoised_output) LATENTs. The samplers' step noise comes
    from ``seed``, by default the NOISE's (DisableNoise's is 0, as in ComfyUI)."""
    from .sampling import fix_empty_latent_channels, progress_callback

    model = getattr(guider, "model", None)
    latent = dict(latent)
    latent["samples"] = fix_empty_latent_channels(model, latent["samples"])
    x0_output: dict[str, Any] = {}
    samples = guider.sample(noise.generate_noise(latent), latent["samples"], sampler, sigmas,
                            denoise_mask=latent.get("noise_mask"), callback=progress_callback(model, x0_output),
                            seed=noise.seed if seed is None else seed)
    out = {**latent, "samples": samples}
    denoised = out
    if "x0" in x0_output and model is not None:
        # The clean estimate of the last step: with leftover noise, what the image would look like now.
        denoised = {**latent, "samples": model.process_latent_out(x0_output["x0"]).to(samples.device)}
    return out, denoised


class SamplerCustom:
    CATEGORY = CATEGORY
    DESCRIPTION = "Samples a latent with a chosen SAMPLER and SIGMAS, guided by positive and negative (CFG)."
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("output", "denoised_output")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "add_noise": ("BOOLEAN", {"default": True}),
            "noise_seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
            "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "sampler": ("SAMPLER",),
            "sigmas": ("SIGMAS",),
            "latent_image": ("LATENT",),
        }}

    def sample(self, model, add_noise, noise_seed, cfg, positive, negative, sampler, sigmas, latent_image):
        from .noise import DisabledNoise, RandomNoise
        from .sampling import Guider

        noise = RandomNoise(noise_seed) if add_noise else DisabledNoise()
        # Without added noise the step noise still comes from noise_seed, as in ComfyUI's SamplerCustom.
        return _run(noise, Guider(model, positive, negative, cfg), sampler, sigmas, latent_image, seed=noise_seed)


class SamplerCustomAdvanced:
    CATEGORY = CATEGORY
    DESCRIPTION = "Samples a latent from its parts: NOISE, GUIDER, SAMPLER and SIGMAS."
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("output", "denoised_output")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"noise": ("NOISE",), "guider": ("GUIDER",), "sampler": ("SAMPLER",),
                             "sigmas": ("SIGMAS",), "latent_image": ("LATENT",)}}

    def sample(self, noise, guider, sampler, sigmas, latent_image):
        return _run(noise, guider, sampler, sigmas, latent_image)


class KSamplerSelect:
    CATEGORY = "sampling/samplers"
    DESCRIPTION = "A SAMPLER by name, from every installed pack's samplers."
    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"sampler_name": (sampler_names(),)}}

    def get_sampler(self, sampler_name):
        from .sampling import sampler_object

        return (sampler_object(sampler_name),)


class AddNoise:
    CATEGORY = "experimental/custom_sampling/noise"
    EXPERIMENTAL = True
    DESCRIPTION = ("Noises a latent to the schedule's span (first minus last sigma) the way the model noises "
                   "latents, without sampling: for workflows that denoise it later with DisableNoise.")
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "add_noise"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "noise": ("NOISE",), "sigmas": ("SIGMAS",),
                             "latent_image": ("LATENT",)}}

    def add_noise(self, model, noise, sigmas, latent_image):
        import torch

        from .sampling import noised_latent

        if len(sigmas) == 0:
            return (latent_image,)
        samples = latent_image["samples"]
        drawn = noise.generate_noise(latent_image).to(samples.device, torch.float32)
        scale = (sigmas[0] - sigmas[-1]).abs() if len(sigmas) > 1 else sigmas[0]
        clean = samples.float()
        if torch.count_nonzero(clean):  # an empty latent stays 0 (it is not shifted into the model's space)
            clean = model.process_latent_in(clean)
        noisy = model.process_latent_out(noised_latent(model.sampling, scale.reshape(1).float(), drawn, clean))
        return ({**latent_image, "samples": torch.nan_to_num(noisy, nan=0.0, posinf=0.0, neginf=0.0)},)


NODES = {
    "AddNoise": AddNoise, "SamplerCustom": SamplerCustom, "SamplerCustomAdvanced": SamplerCustomAdvanced,
    "KSamplerSelect": KSamplerSelect,
}
