"""GUIDER and NOISE nodes with ComfyUI's names: CFGGuider, BasicGuider, DualCFGGuider, RandomNoise, DisableNoise."""

from __future__ import annotations

from typing import Any

from .nodes_ksampler import MAX_SEED


def _cfg_input(default: float = 8.0) -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": default, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01})


class CFGGuider:
    CATEGORY = "sampling/guiders"
    DISPLAY_NAME = "CFG Guider"
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
    CATEGORY = "sampling/guiders"
    DISPLAY_NAME = "Basic Guider"
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
    CATEGORY = "sampling/guiders"
    DISPLAY_NAME = "Dual CFG Guider"
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
    CATEGORY = "sampling/noise"
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
    CATEGORY = "sampling/noise"
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
    "CFGGuider": CFGGuider, "BasicGuider": BasicGuider, "DualCFGGuider": DualCFGGuider,
    "RandomNoise": RandomNoise, "DisableNoise": DisableNoise,
}
