"""KSampler and KSamplerAdvanced with ComfyUI's names, inputs and outputs: sample a LATENT with a MODEL."""

from __future__ import annotations

from typing import Any

from .installed import sampler_names, scheduler_names

MAX_SEED = 0xFFFFFFFFFFFFFFFF


def _common_inputs() -> dict[str, Any]:
    return {
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000,
                          "tooltip": "How many denoising steps; more is slower and usually finer."}),
        "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                          "tooltip": "Classifier-free guidance scale: how strongly to follow the prompt. "
                                     "1.0 ignores the negative and halves the work."}),
        "sampler_name": (sampler_names(), {"tooltip": "The algorithm that removes the noise."}),
        "scheduler": (scheduler_names(), {"tooltip": "How the noise level falls over the steps."}),
        "positive": ("CONDITIONING", {"tooltip": "What the image should show."}),
        "negative": ("CONDITIONING", {"tooltip": "What the image should not show."}),
        "latent_image": ("LATENT", {"tooltip": "The latent to start from (empty for text to image)."}),
    }


class KSampler:
    DISPLAY_NAME = "KSampler"
    CATEGORY = "sampling"
    DESCRIPTION = "Denoises a latent with a model, guided by positive and negative conditioning."
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The denoised latent.",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model that denoises."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True,
                             "tooltip": "The seed of the noise: the same seed gives the same image."}),
            **_common_inputs(),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                  "tooltip": "How much of the latent to replace: below 1 keeps its structure "
                                             "(image to image)."}),
        }}

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
               denoise=1.0):
        from .sampling import common_ksampler

        return (common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                                denoise=denoise),)


class KSamplerAdvanced:
    DISPLAY_NAME = "KSampler (Advanced)"
    CATEGORY = "sampling"
    DESCRIPTION = ("KSampler over part of the schedule: start and end steps, with or without adding noise and "
                   "with or without leaving the remaining noise in, for multi-pass sampling.")
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "add_noise": (["enable", "disable"],),
            "noise_seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
            **_common_inputs(),
            "start_at_step": ("INT", {"default": 0, "min": 0, "max": 10000}),
            "end_at_step": ("INT", {"default": 10000, "min": 0, "max": 10000}),
            "return_with_leftover_noise": (["disable", "enable"],),
        }}

    def sample(self, model, add_noise, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative,
               latent_image, start_at_step, end_at_step, return_with_leftover_noise, denoise=1.0):
        from .sampling import common_ksampler

        return (common_ksampler(model, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                latent_image, denoise=denoise, disable_noise=add_noise == "disable",
                                start_step=start_at_step, last_step=end_at_step,
                                force_full_denoise=return_with_leftover_noise != "enable"),)


NODES = {"KSampler": KSampler, "KSamplerAdvanced": KSamplerAdvanced}
