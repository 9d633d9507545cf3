"""Guidance patches with ComfyUI's names: a MODEL clone whose classifier-free guidance is changed through the
sampler functions of its ``model_options`` (CFGNorm, CFGZeroStar, RescaleCFG, Mahiro, APG, TCFG) or whose
inpainting mask changes with the step (DifferentialDiffusion).

Each follows ComfyUI's node of the same name (``comfy_extras/nodes_cfg.py``, ``nodes_model_advanced.py``,
``nodes_mahiro.py``, ``nodes_apg.py``, ``nodes_tcfg.py``, ``nodes_differential_diffusion.py``); the samplers apply
the functions with ComfyUI's semantics for any MODEL family (docs/data-types.md, the MODEL protocol).
"""

from __future__ import annotations

from typing import Any

GUIDANCE = "advanced/guidance"


def clone_for_patch(node: str, model: Any) -> Any:
    if not callable(getattr(model, "clone", None)) or not isinstance(getattr(model, "model_options", None), dict):
        raise ValueError(f"{node}: this MODEL ({type(model).__name__}) has no model_options to patch; connect a "
                         f"MODEL from a checkpoint or diffusion-model loader")
    return model.clone()


def add_sampler_function(model: Any, key: str, fn: Any) -> None:
    # The MODEL protocol's layout, for models without ComfyUI's setters (ModelValue has them).
    setter = getattr(model, f"set_model_{key}", None)
    if callable(setter):
        setter(fn)
    elif key == "sampler_cfg_function":
        model.model_options[key] = fn
    else:
        model.model_options[key] = [*model.model_options.get(key, []), fn]


def with_sampler_function(node: str, model: Any, key: str, fn: Any) -> tuple[Any]:
    """A patch node's output: a clone of ``model`` with ``fn`` added as its ``key`` sampler function."""
    patched = clone_for_patch(node, model)
    add_sampler_function(patched, key, fn)
    return (patched,)


class _PatchedModelNode:
    """What the nodes whose one output is ``patched_model`` declare alike: that output and, unless a node adds
    widgets, the MODEL input alone."""

    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("patched_model",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",)}}


class CFGNorm(_PatchedModelNode):
    CATEGORY = GUIDANCE
    EXPERIMENTAL = True
    DESCRIPTION = "Caps the guided prediction's per-pixel channel norm at the positive prediction's, times strength."
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",),
                             "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.01})},
                "optional": {"pre_cfg": ("BOOLEAN", {"default": False, "tooltip": (
                    "If true, rescale the combined noise BEFORE the sampler's CFG combine, without clamping (can "
                    "amplify). Matches the norm-scaled CFG used by models like Lens. Default false keeps the "
                    "original post-CFG x0-space attenuate-only behavior.")})}}

    def execute(self, model, strength, pre_cfg=False):
        import torch

        def cfg_norm(args):
            guided = args["denoised"]
            ratio = torch.norm(args["cond_denoised"], dim=1, keepdim=True) / (
                torch.norm(guided, dim=1, keepdim=True) + 1e-8)
            return guided * ratio.clamp(min=0.0, max=1.0) * strength

        def cfg_norm_noise(args):
            # In noise space: the guided noise rescaled to the positive noise's channel norm, blended by strength.
            cond, uncond = args["cond"], args["uncond"]
            guided = uncond + args["cond_scale"] * (cond - uncond)
            cond_norm = torch.linalg.vector_norm(cond, dim=1, keepdim=True)
            guided_norm = torch.linalg.vector_norm(guided, dim=1, keepdim=True)
            ratio = torch.where(guided_norm > 0, cond_norm / guided_norm.clamp_min(1e-12), torch.ones_like(guided_norm))
            rescaled = guided * ratio
            return rescaled if strength == 1.0 else strength * rescaled + (1.0 - strength) * guided

        if pre_cfg:
            return with_sampler_function("CFGNorm", model, "sampler_cfg_function", cfg_norm_noise)
        return with_sampler_function("CFGNorm", model, "sampler_post_cfg_function", cfg_norm)


def optimized_scale(positive, negative):
    """CFG-Zero*'s per-item projection coefficient ``<positive, negative> / |negative|^2`` (Fan et al. 2025)."""
    import torch

    p, n = positive.reshape(positive.shape[0], -1), negative.reshape(negative.shape[0], -1)
    scale = torch.sum(p * n, dim=1, keepdim=True) / (torch.sum(n**2, dim=1, keepdim=True) + 1e-8)
    return scale.reshape([positive.shape[0]] + [1] * (positive.ndim - 1))


class CFGZeroStar(_PatchedModelNode):
    CATEGORY = GUIDANCE
    DESCRIPTION = "CFG-Zero*: the negative prediction scaled by its projection on the positive before guiding."
    FUNCTION = "execute"

    def execute(self, model):
        def cfg_zero_star(args):
            x, scale = args["input"], args["cond_scale"]
            uncond = args["uncond_denoised"]
            alpha = optimized_scale(x - args["cond_denoised"], x - uncond)
            # The guided prediction with the negative replaced by alpha * negative (in noise space).
            return args["denoised"] + uncond * (alpha - 1.0) + scale * uncond * (1.0 - alpha)

        return with_sampler_function("CFGZeroStar", model, "sampler_post_cfg_function", cfg_zero_star)


class RescaleCFG:
    CATEGORY = "advanced/model"
    DESCRIPTION = ("Rescales the guided v-prediction to the positive one's standard deviation (Lin et al. 2024, "
                   "sec. 3.4), mixed with the plain guided one by multiplier.")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",),
                             "multiplier": ("FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def patch(self, model, multiplier):
        import torch

        def rescale_cfg(args):
            x_in, scale = args["input"], args["cond_scale"]
            sigma = args["sigma"].reshape(-1, *([1] * (x_in.ndim - 1)))
            # The rescaling is defined on v predictions: convert the noise-space predictions, rescale, convert back.
            x = x_in / (sigma * sigma + 1.0)
            root = (sigma**2 + 1.0) ** 0.5
            v_cond = (x - (x_in - args["cond"])) * root / sigma
            v_uncond = (x - (x_in - args["uncond"])) * root / sigma
            v_cfg = v_uncond + scale * (v_cond - v_uncond)
            dims = tuple(range(1, x_in.ndim))
            rescaled = v_cfg * (torch.std(v_cond, dim=dims, keepdim=True) / torch.std(v_cfg, dim=dims, keepdim=True))
            v_final = multiplier * rescaled + (1.0 - multiplier) * v_cfg
            return x_in - (x - v_final * sigma / root)

        return with_sampler_function("RescaleCFG", model, "sampler_cfg_function", rescale_cfg)


class Mahiro(_PatchedModelNode):
    CATEGORY = "_for_testing"
    DISPLAY_NAME = "Mahiro is so cute that she deserves a better guidance function!! (。・ω・。)"
    DESCRIPTION = ("Modify the guidance to scale more on the 'direction' of the positive prompt rather than the "
                   "difference between the negative prompt.")
    FUNCTION = "patch"

    def patch(self, model):
        import torch
        import torch.nn.functional as F

        def mahiro(args):
            scale, guided = args["cond_scale"], args["denoised"]
            leap = args["cond_denoised"] * scale
            uncond_leap = args["uncond_denoised"] * scale
            merge = (leap + guided) / 2
            # Similarity of the signed square roots, per pixel over channels, averaged: -1..1 mapped to 0..4.
            similarity = F.cosine_similarity(torch.sqrt(uncond_leap.abs()) * uncond_leap.sign(),
                                             torch.sqrt(merge.abs()) * merge.sign()).mean()
            weight = 2 * (similarity + 1)
            return (weight * guided + (4 - weight) * leap) / 4

        return with_sampler_function("Mahiro", model, "sampler_post_cfg_function", mahiro)


class APG:
    CATEGORY = "sampling/custom_sampling"
    DISPLAY_NAME = "Adaptive Projected Guidance"
    DESCRIPTION = ("Adaptive Projected Guidance (Sadat et al. 2024): the guidance split into its parts parallel and "
                   "orthogonal to the positive prediction, the parallel part scaled by eta, its norm capped, "
                   "optionally with momentum.")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "eta": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01, "tooltip":
                              "Controls the scale of the parallel guidance vector. Default CFG behavior at a setting "
                              "of 1."}),
            "norm_threshold": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 50.0, "step": 0.1, "tooltip":
                                         "Normalize guidance vector to this value, normalization disable at a "
                                         "setting of 0."}),
            "momentum": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip":
                                   "Controls a running average of guidance during diffusion, disabled at a setting "
                                   "of 0."}),
        }}

    def patch(self, model, eta, norm_threshold, momentum):
        import torch
        import torch.nn.functional as F

        state: dict[str, Any] = {"average": None, "sigma": None}

        def apg(args):
            out = args["conds_out"]
            if len(out) == 1:
                return out
            cond, uncond, scale = out[0], out[1], args["cond_scale"]
            sigma = args["sigma"][0]
            if state["sigma"] is not None and sigma > state["sigma"]:
                state["average"] = None  # a new sampling run: the momentum starts again
            state["sigma"] = sigma
            guidance = cond - uncond
            if momentum > 0:
                state["average"] = guidance if state["average"] is None else momentum * state["average"] + guidance
                guidance = state["average"]
            dims = [-1, -2, -3]
            if norm_threshold > 0:
                norm = guidance.norm(p=2, dim=dims, keepdim=True)
                guidance = guidance * torch.minimum(torch.ones_like(norm), norm_threshold / norm)
            direction = F.normalize(cond, dim=dims)
            parallel = (guidance * direction).sum(dim=dims, keepdim=True) * direction
            modified = (guidance - parallel) + eta * parallel
            # Chosen so that CFG's uncond + (cond - uncond) * scale gives uncond + scale * modified + (cond - uncond).
            return [uncond + modified + (cond - uncond) / scale, uncond, *out[2:]]

        return with_sampler_function("APG", model, "sampler_pre_cfg_function", apg)


def tangential_damping(cond_score, uncond_score):
    """TCFG (arXiv:2503.18137): the negative score projected on the first right-singular vector of the pair."""
    import torch

    batch = cond_score.shape[0]
    cond_flat = cond_score.reshape(batch, 1, -1).float()
    uncond_flat = uncond_score.reshape(batch, 1, -1).float()
    _, _, vh = torch.linalg.svd(torch.cat((uncond_flat, cond_flat), dim=1), full_matrices=False)
    v1 = vh[:, 0:1, :]
    return ((uncond_flat @ v1.transpose(-2, -1)) * v1).reshape_as(uncond_score).to(uncond_score.dtype)


class TCFG(_PatchedModelNode):
    CATEGORY = GUIDANCE
    DISPLAY_NAME = "Tangential Damping CFG"
    DESCRIPTION = ("TCFG – Tangential Damping CFG (2503.18137)\n\nRefine the uncond (negative) to align with the cond "
                   "(positive) for improving quality.")
    FUNCTION = "patch"

    def patch(self, model):
        def tcfg(args):
            x, out = args["input"], args["conds_out"]
            if len(out) <= 1 or any(c is None for c in args["conds"][:2]):
                return out
            return [out[0], x - tangential_damping(x - out[0], x - out[1]), *out[2:]]

        return with_sampler_function("TCFG", model, "sampler_pre_cfg_function", tcfg)


def _model_sampling(denoiser: Any) -> Any:
    inner = getattr(denoiser, "inner_model", denoiser)
    return getattr(inner, "model_sampling", None) or inner.sampling


def differential_mask(sigma, denoise_mask, extra_options: dict[str, Any], strength: float = 1.0):
    """Differential Diffusion (Levin & Fried 2023): a soft inpainting mask thresholded by the progress through the
    schedule, in timesteps (1 at the first sigma, 0 at the last or the model's sigma_min), so a pixel of mask
    value m is regenerated from the step where the progress falls to m; strength < 1 blends in the soft mask."""
    import torch

    sampling = _model_sampling(extra_options["model"])
    steps = extra_options["sigmas"]
    sigma_to = float(sampling.sigma_min)
    if float(steps[-1]) > sigma_to:
        sigma_to = float(steps[-1])
    ts_from = sampling.timestep(steps[0].reshape(1).float())
    ts_to = sampling.timestep(torch.tensor([sigma_to]))
    current = sampling.timestep(sigma.reshape(-1)[:1].float())
    threshold = (current - ts_to.to(current)) / (ts_from.to(current) - ts_to.to(current))
    binary = (denoise_mask >= threshold.to(denoise_mask.device)).to(denoise_mask.dtype)
    if strength and strength < 1:
        return strength * binary + (1 - strength) * denoise_mask
    return binary


class DifferentialDiffusion:
    CATEGORY = "_for_testing"
    DISPLAY_NAME = "Differential Diffusion"
    EXPERIMENTAL = True
    DESCRIPTION = ("Inpaints with a soft mask as a per-pixel denoise strength: each step regenerates the pixels whose "
                   "mask value is above the remaining fraction of the schedule.")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",)},
                "optional": {"strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def execute(self, model, strength=1.0):
        patched = clone_for_patch("DifferentialDiffusion", model)

        def mask_function(sigma, denoise_mask, extra_options):
            return differential_mask(sigma, denoise_mask, extra_options, strength)

        patched.model_options["denoise_mask_function"] = mask_function
        return (patched,)


NODES = {cls.__name__: cls for cls in (CFGNorm, CFGZeroStar, RescaleCFG, Mahiro, APG, TCFG, DifferentialDiffusion)}
