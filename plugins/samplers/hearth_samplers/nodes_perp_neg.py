"""Perp-Neg nodes with ComfyUI's names (``comfy_extras/nodes_perpneg.py``): PerpNegGuider, a GUIDER that samples
positive, negative and an empty prompt together, and PerpNeg, the older MODEL patch doing the same through the
model's ``sampler_cfg_function`` (an extra model call for the empty prompt each step).

Perp-Neg (Armandpour et al. 2023) keeps only the part of the negative's guidance perpendicular to the positive's,
so a negative prompt removes what it names without pulling against what the positive asks for.
"""

from __future__ import annotations

from typing import Any

CATEGORY = "_for_testing"


def _cfg_input() -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01})


def _neg_scale_input() -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.01})


class PerpNegGuider:
    CATEGORY = CATEGORY
    EXPERIMENTAL = True
    DESCRIPTION = ("Guidance from the empty prompt towards the positive, minus neg_scale times the negative's part "
                   "perpendicular to it (Perp-Neg).")
    RETURN_TYPES = ("GUIDER",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "empty_conditioning": ("CONDITIONING",), "cfg": _cfg_input(),
                             "neg_scale": _neg_scale_input()}}

    def execute(self, model, positive, negative, empty_conditioning, cfg, neg_scale):
        from .sampling import Guider

        return (Guider(model, positive, negative, cfg, middle=empty_conditioning, cfg_2=neg_scale,
                       style="perp_neg"),)


class PerpNeg:
    CATEGORY = CATEGORY
    DISPLAY_NAME = "Perp-Neg (DEPRECATED by PerpNegGuider)"
    EXPERIMENTAL = True
    DEPRECATED = True
    DESCRIPTION = "Perp-Neg as a MODEL patch; PerpNegGuider does the same in one batch per step."
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "empty_conditioning": ("CONDITIONING",),
                             "neg_scale": _neg_scale_input()}}

    def execute(self, model, empty_conditioning, neg_scale):
        from .guidance import perp_neg, predict
        from .nodes_guidance_patches import add_sampler_function, clone_for_patch
        from .regions import resolve

        patched = clone_for_patch("PerpNeg", model)

        def cfg_function(args):
            x, sigma = args["input"], args["sigma"]
            # The MODEL being sampled (a later clone may carry more patches), else the one patched here.
            target = getattr(args["model"], "current_patcher", None) or patched
            regions = resolve(empty_conditioning, x.shape, target.sampling, x.device)
            for region in regions:
                region.model_options["prompt_type"] = "negative"
            (empty,) = predict(target, [regions], x, sigma)
            guided = perp_neg(args["cond_denoised"], args["uncond_denoised"], empty, neg_scale, args["cond_scale"])
            return x - guided  # sampler_cfg_function works in noise space

        add_sampler_function(patched, "sampler_cfg_function", cfg_function)
        return (patched,)


NODES = {"PerpNeg": PerpNeg, "PerpNegGuider": PerpNegGuider}
