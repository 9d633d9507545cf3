"""ComfyUI's ``comfy.sample`` module: seeded noise and the one-call samplers custom KSampler nodes are built from.

Backed by the sampling engine a plugin offers, like :mod:`hearth_comfy_compat.comfy_samplers`: the same seed, steps and settings
give the same latent as Hearth's KSampler node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np  # noqa: F401 - ComfyUI's module has it, and packs import it from here (`from comfy.sample import np`)

from hearth_comfy_compat.comfy_samplers import KSampler, _sampling
from hearth_comfy_compat.comfy_samplers import sample as _guided_sample

# Where older ComfyUI kept these; packs still call them as comfy.sample.*.
from hearth_comfy_compat.comfyui.comfy.sampler_helpers import (
    cleanup_additional_models,
    convert_cond,
    get_additional_models,
    get_models_from_cond,
    prepare_mask,
)

__all__ = ["cleanup_additional_models", "convert_cond", "fix_empty_latent_channels", "get_additional_models",
           "get_models_from_cond", "prepare_mask", "prepare_noise", "sample", "sample_custom"]


def prepare_noise(latent_image: Any, seed: int, noise_inds: list[int] | None = None) -> Any:
    """Standard normal noise shaped like ``latent_image``, on the CPU, from ``seed`` (``noise_inds``: the
    batch positions the items had, so one item of a batch regenerates alone)."""
    return _sampling().prepare_noise(latent_image, seed, noise_inds)


def fix_empty_latent_channels(model: Any, latent_image: Any) -> Any:
    """An all-zero latent made for another channel count, remade with the model's."""
    if getattr(type(model), "HEARTH_LENT", False):  # in a pack host: Hearth's process knows its model's channels
        return model.hearth_sample("fix_empty_latent_channels", {"latent_image": latent_image})
    return _sampling().fix_empty_latent_channels(model, latent_image)


def sample(model: Any, noise: Any, steps: int, cfg: float, sampler_name: str, scheduler: str, positive: list,
           negative: list, latent_image: Any, denoise: float = 1.0, disable_noise: bool = False,
           start_step: int | None = None, last_step: int | None = None, force_full_denoise: bool = False,
           noise_mask: Any = None, sigmas: Any = None, callback: Callable[..., None] | None = None,
           disable_pbar: bool = False, seed: int | None = None) -> Any:
    """KSampler in one call: the raw latent sampled from ``latent_image`` plus ``noise``."""
    if getattr(type(model), "HEARTH_LENT", False):  # in a pack host: Hearth's process samples its own model
        return model.hearth_sample("sample", {
            "noise": noise, "steps": steps, "cfg": cfg, "sampler_name": sampler_name, "scheduler": scheduler,
            "positive": positive, "negative": negative, "latent_image": latent_image, "denoise": denoise,
            "disable_noise": disable_noise, "start_step": start_step, "last_step": last_step,
            "force_full_denoise": force_full_denoise, "noise_mask": noise_mask, "sigmas": sigmas,
            "callback": callback, "disable_pbar": disable_pbar, "seed": seed})
    sampler = KSampler(model, steps=steps, sampler=sampler_name, scheduler=scheduler, denoise=denoise)
    return sampler.sample(noise, positive, negative, cfg=cfg, latent_image=latent_image, start_step=start_step,
                          last_step=last_step, force_full_denoise=force_full_denoise, denoise_mask=noise_mask,
                          sigmas=sigmas, callback=callback, disable_pbar=disable_pbar, seed=seed)


def sample_custom(model: Any, noise: Any, cfg: float, sampler: Any, sigmas: Any, positive: list, negative: list,
                  latent_image: Any, noise_mask: Any = None, callback: Callable[..., None] | None = None,
                  disable_pbar: bool = False, seed: int | None = None) -> Any:
    """Sample with a SAMPLER object along explicit ``sigmas`` (SamplerCustom's core)."""
    return _guided_sample(model, noise, positive, negative, cfg, None, sampler, sigmas, None, latent_image,
                          noise_mask, callback, disable_pbar, seed)
