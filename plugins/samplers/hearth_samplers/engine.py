"""The samplers plugin's sampling engine as other plugins reach it: the ``resolve_sampling_engine`` hook's answer.

Other plugins (the ComfyUI compatibility plugin's ``comfy.samplers`` / ``comfy.sample`` / ``latent_preview``)
sample through these names only, never by importing this plugin's modules, so the same seed and settings give
the same latent as the KSampler node; ``default_noise_sampler`` and ``BrownianTreeNoiseSampler`` are ComfyUI's
noise samplers under their ComfyUI names, the same numbers as ComfyUI's for a seed.
"""

from __future__ import annotations

from .brownian import BrownianTreeNoiseSampler
from .noise import prepare_noise
from .preview import progress_preview
from .sampling import (
    Guider,
    Sampler,
    calculate_sigmas,
    common_ksampler,
    fix_empty_latent_channels,
    ksampler_sigmas,
    progress_callback,
    sampler_object,
)
from .stepping import default_noise_sampler

__all__ = ["BrownianTreeNoiseSampler", "Guider", "Sampler", "calculate_sigmas", "common_ksampler",
           "default_noise_sampler", "fix_empty_latent_channels", "ksampler_sigmas", "prepare_noise",
           "progress_callback", "progress_preview", "sampler_object"]
