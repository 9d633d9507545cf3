"""Custom sampling nodes with ComfyUI's names: SamplerCustom(Advanced) and the parts they are built from
(KSamplerSelect, the guiders, RandomNoise and DisableNoise)."""

from __future__ import annotations

from typing import Any

from .names import sampler_names
from .nodes_ksampler import MAX_SEED

CATEGORY = "sampling/custom_sampling"


def _run(noise, guider, sampler, sigmas, latent: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sample ``latent`` with a GUIDER; returns (output, denoised_output) LATENTs."""
    from .sampling import fix_empty_latent_channels, progress_callback

    model = getattr(guider, "model", None)
    latent = dict(latent)
    latent["samples"] = fix_empty_latent_channels(model, latent["samples"])
    x0_output: dict[str, Any] = {}
    samples = guider.sample(noise.generate_noise(latent), latent["samples"], sampler, sigmas,
                            denoise_mask=latent.get("noise_mask"), callback=progress_callback(model, x0_output),
                            seed=noise.seed)
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
        return _run(noise, Guider(model, positive, negative, cfg), sampler, sigmas, latent_image)


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
    CATEGORY = f"{CATEGORY}/samplers"
    DESCRIPTION = "A SAMPLER by name, from every installed pack's samplers."
    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"sampler_name": (sampler_names(),)}}

    def get_sampler(self, sampler_name):
        from .sampling import sampler_object

        return (sampler_object(sampler_name),)


def _cfg_input(default: float = 8.0) -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": default, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01})


class CFGGuider:
    CATEGORY = f"{CATEGORY}/guiders"
    DESCRIPTION = "Classifier-free guidance: the negative prediction pushed towards the positive by cfg."
    RETURN_TYPES = ("GUIDER",)
    FUNCTION = "get_guider"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "cfg": _cfg_input()}}

    def get_guider(self, model, positive, negative, cfg):
        from .sampling import Guider

        return (Guider(model, positive, negative, cfg),)


class BasicGuider:
    CATEGORY = f"{CATEGORY}/guiders"
    DESCRIPTION = "No guidance: the model's prediction for one conditioning (one model call per step)."
    RETURN_TYPES = ("GUIDER",)
    FUNCTION = "get_guider"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "conditioning": ("CONDITIONING",)}}

    def get_guider(self, model, conditioning):
        from .sampling import Guider

        return (Guider(model, conditioning),)


class DualCFGGuider:
    CATEGORY = f"{CATEGORY}/guiders"
    DESCRIPTION = ("Guidance with two conditionings: cond2 guided away from negative by cfg_cond2_negative, "
                   "cond1 away from cond2 by cfg_conds ('nested' applies the second guidance to the first's).")
    RETURN_TYPES = ("GUIDER",)
    FUNCTION = "get_guider"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "cond1": ("CONDITIONING",), "cond2": ("CONDITIONING",),
                             "negative": ("CONDITIONING",), "cfg_conds": _cfg_input(),
                             "cfg_cond2_negative": _cfg_input(), "style": (["regular", "nested"],)}}

    def get_guider(self, model, cond1, cond2, negative, cfg_conds, cfg_cond2_negative, style="regular"):
        from .sampling import Guider

        return (Guider(model, cond1, negative, cfg_conds, middle=cond2, cfg_2=cfg_cond2_negative, style=style),)


class RandomNoise:
    CATEGORY = f"{CATEGORY}/noise"
    DESCRIPTION = "Gaussian noise from a seed (drawn on the CPU: the same seed gives the same noise anywhere)."
    RETURN_TYPES = ("NOISE",)
    FUNCTION = "get_noise"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"noise_seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED,
                                                    "control_after_generate": True})}}

    def get_noise(self, noise_seed):
        from .noise import RandomNoise as Noise

        return (Noise(noise_seed),)


class DisableNoise:
    CATEGORY = f"{CATEGORY}/noise"
    DESCRIPTION = "No noise: for a latent that already carries its noise (the second pass of a split schedule)."
    RETURN_TYPES = ("NOISE",)
    FUNCTION = "get_noise"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def get_noise(self):
        from .noise import DisabledNoise

        return (DisabledNoise(),)


NODES = {
    "SamplerCustom": SamplerCustom, "SamplerCustomAdvanced": SamplerCustomAdvanced,
    "KSamplerSelect": KSamplerSelect, "CFGGuider": CFGGuider, "BasicGuider": BasicGuider,
    "DualCFGGuider": DualCFGGuider, "RandomNoise": RandomNoise, "DisableNoise": DisableNoise,
}
