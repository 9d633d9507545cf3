"""SIGMAS nodes with ComfyUI's names: schedules (Basic, Karras, Exponential, SDTurbo) and Split/Flip."""

from __future__ import annotations

from typing import Any

from .installed import scheduler_names

SD_SIGMA_MAX, SD_SIGMA_MIN = 14.614642, 0.0291675  # SD1/SD2/SDXL's training range: the defaults below


def _sigma_input(default: float) -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": default, "min": 0.0, "max": 5000.0, "step": 0.01, "round": False})


class BasicScheduler:
    CATEGORY = "sampling/schedulers"
    DESCRIPTION = "The sigmas of a named schedule for a model; below denoise 1, the tail of a longer schedule."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "scheduler": (scheduler_names(),),
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
        }}

    def get_sigmas(self, model, scheduler, steps, denoise):
        import torch

        from .sampling import calculate_sigmas

        total = steps
        if denoise < 1.0:
            if denoise <= 0.0:
                return (torch.zeros(0),)
            total = int(steps / denoise)
        return (calculate_sigmas(model.sampling, scheduler, total).cpu()[-(steps + 1):],)


class KarrasScheduler:
    CATEGORY = "sampling/schedulers"
    DESCRIPTION = "Karras et al. 2022's schedule: equal steps in sigma^(1/rho)."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
            "sigma_max": _sigma_input(SD_SIGMA_MAX),
            "sigma_min": _sigma_input(SD_SIGMA_MIN),
            "rho": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.01, "round": False}),
        }}

    def get_sigmas(self, steps, sigma_max, sigma_min, rho):
        from .schedules import get_sigmas_karras

        return (get_sigmas_karras(steps, sigma_min, sigma_max, rho=rho),)


class ExponentialScheduler:
    CATEGORY = "sampling/schedulers"
    DESCRIPTION = "Equal steps in log sigma."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
                             "sigma_max": _sigma_input(SD_SIGMA_MAX), "sigma_min": _sigma_input(SD_SIGMA_MIN)}}

    def get_sigmas(self, steps, sigma_max, sigma_min):
        from .schedules import get_sigmas_exponential

        return (get_sigmas_exponential(steps, sigma_min, sigma_max),)


class SDTurboScheduler:
    CATEGORY = "sampling/schedulers"
    DESCRIPTION = "SD-Turbo's few-step schedule (timesteps 999, 899, ...)."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "steps": ("INT", {"default": 1, "min": 1, "max": 10}),
                             "denoise": ("FLOAT", {"default": 1.0, "min": 0, "max": 1.0, "step": 0.01})}}

    def get_sigmas(self, model, steps, denoise):
        from .discrete_schedules import sd_turbo_sigmas

        return (sd_turbo_sigmas(model.sampling, steps, denoise),)


class SplitSigmas:
    CATEGORY = "sampling/sigmas"
    DESCRIPTION = "Splits a schedule at a step; the step's sigma ends the first part and starts the second."
    RETURN_TYPES = ("SIGMAS", "SIGMAS")
    RETURN_NAMES = ("high_sigmas", "low_sigmas")
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"sigmas": ("SIGMAS",), "step": ("INT", {"default": 0, "min": 0, "max": 10000})}}

    def get_sigmas(self, sigmas, step):
        return (sigmas[:step + 1], sigmas[step:])


class FlipSigmas:
    CATEGORY = "sampling/sigmas"
    DESCRIPTION = "Reverses a schedule (noising instead of denoising); a leading 0 becomes 0.0001."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"sigmas": ("SIGMAS",)}}

    def get_sigmas(self, sigmas):
        if len(sigmas) == 0:
            return (sigmas,)
        flipped = sigmas.flip(0)  # a copy: the cached input is not changed
        if flipped[0] == 0:
            # Samplers divide by sigma; start just above 0.
            flipped[0] = 0.0001
        return (flipped,)


NODES = {
    "BasicScheduler": BasicScheduler, "KarrasScheduler": KarrasScheduler,
    "ExponentialScheduler": ExponentialScheduler, "SDTurboScheduler": SDTurboScheduler,
    "SplitSigmas": SplitSigmas, "FlipSigmas": FlipSigmas,
}
