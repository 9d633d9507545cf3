"""ModelSampling* nodes with ComfyUI's names: a MODEL clone that samples with another noise schedule / prediction.

ModelSamplingDiscrete, ModelSamplingContinuousEDM, ModelSamplingContinuousV, ModelSamplingAuraFlow and
ModelSamplingFlux (ComfyUI's ``comfy_extras/nodes_model_advanced.py``) each put a model-sampling object
(:mod:`.model_sampling`) on a clone as the ``model_sampling`` object patch; the MODEL evaluates with it and the
samplers and schedules read it. ModelSamplingSD3 is the video plugin's node (the same flow sampling, multiplier
1000). Differences from ComfyUI: ``edm_playground_v2.5`` also needs Playground's latent format, which Hearth's SD
MODEL cannot take, and ``cosmos_rflow``, ``img_to_img`` and AuraFlow's ``img_to_img_velocity`` serve families Hearth lacks: they are listed (the same
choices as ComfyUI) but refused with that reason rather than sampled wrongly.
"""

from __future__ import annotations

from typing import Any

CATEGORY = "advanced/model"
MAX_RESOLUTION = 16384


def _patched(node: str, model: Any, sampling: Any) -> tuple[Any]:
    if not callable(getattr(model, "add_object_patch", None)):
        raise ValueError(f"{node}: this MODEL ({type(model).__name__}) cannot take another model sampling; connect "
                         f"a MODEL from a checkpoint or diffusion-model loader")
    patched = model.clone()
    patched.add_object_patch("model_sampling", sampling)
    return (patched,)


def _schedule_of(model: Any) -> dict[str, float]:
    # The model's own beta range where it declares one (ComfyUI reads its config's sampling_settings).
    own = getattr(model, "sampling", None)
    return {key: float(getattr(own, key)) for key in ("linear_start", "linear_end") if hasattr(own, key)}


def _sigma_input(default: float) -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": default, "min": 0.0, "max": 1000.0, "step": 0.001, "round": False})


class ModelSamplingDiscrete:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Samples the model as a discrete 1000-step model of the chosen prediction (eps, v, LCM's "
                   "50-step table, x0); zsnr rescales the schedule to zero terminal SNR.")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "sampling": (["eps", "v_prediction", "lcm", "x0", "img_to_img"],),
                             "zsnr": ("BOOLEAN", {"default": False})}}

    def patch(self, model, sampling, zsnr):
        from .model_sampling import DiscreteSampling

        kinds = {"eps": "eps", "v_prediction": "v", "lcm": "lcm", "x0": "x0"}
        if sampling not in kinds:
            raise ValueError(f"ModelSamplingDiscrete: sampling {sampling!r} is for a model family Hearth does not "
                             f"have; choose one of {list(kinds)}")
        return _patched("ModelSamplingDiscrete", model, DiscreteSampling(kinds[sampling], bool(zsnr),
                                                                         **_schedule_of(model)))


class ModelSamplingContinuousEDM:
    CATEGORY = CATEGORY
    DESCRIPTION = "Samples the model with continuous sigmas between sigma_min and sigma_max (EDM timesteps)."
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "sampling": (["v_prediction", "edm", "edm_playground_v2.5", "eps",
                                                                "cosmos_rflow"],),
                             "sigma_max": _sigma_input(120.0), "sigma_min": _sigma_input(0.002)}}

    def patch(self, model, sampling, sigma_max, sigma_min):
        from .model_sampling import ContinuousEDMSampling

        kinds = {"v_prediction": ("v", 1.0), "edm": ("edm", 0.5), "eps": ("eps", 1.0)}
        if sampling not in kinds:
            raise ValueError(f"ModelSamplingContinuousEDM: sampling {sampling!r} needs a model family Hearth does "
                             f"not have (its own latent format or flow); choose one of {list(kinds)}")
        kind, sigma_data = kinds[sampling]
        try:
            sampling_object = ContinuousEDMSampling(kind, float(sigma_min), float(sigma_max), sigma_data)
        except ValueError as exc:
            raise ValueError(f"ModelSamplingContinuousEDM: {exc}") from None
        return _patched("ModelSamplingContinuousEDM", model, sampling_object)


class ModelSamplingContinuousV:
    CATEGORY = CATEGORY
    DESCRIPTION = "Samples a v-prediction model with continuous sigmas (timestep atan(sigma) * 2 / pi)."
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "sampling": (["v_prediction"],),
                             "sigma_max": _sigma_input(500.0), "sigma_min": _sigma_input(0.03)}}

    def patch(self, model, sampling, sigma_max, sigma_min):
        from .model_sampling import ContinuousVSampling

        if sampling != "v_prediction":
            raise ValueError(f"ModelSamplingContinuousV: sampling must be 'v_prediction', got {sampling!r}")
        try:
            sampling_object = ContinuousVSampling("v", float(sigma_min), float(sigma_max))
        except ValueError as exc:
            raise ValueError(f"ModelSamplingContinuousV: {exc}") from None
        return _patched("ModelSamplingContinuousV", model, sampling_object)


class ModelSamplingAuraFlow:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Samples the model as a rectified-flow model with shifted sigmas and timestep = sigma "
                   "(AuraFlow's; Lumina 2, Qwen-Image and others use it too).")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch_aura"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",),
                             "shift": ("FLOAT", {"default": 1.73, "min": 0.0, "max": 100.0, "step": 0.01})},
                "optional": {"sampling": (["flow", "img_to_img_velocity"], {"default": "flow", "advanced": True})}}

    def patch_aura(self, model, shift, sampling="flow"):
        from .model_sampling import FlowSampling

        if sampling != "flow":
            raise ValueError(f"ModelSamplingAuraFlow: sampling {sampling!r} is for a model family Hearth does not "
                             f"have (Marigold); use 'flow'")
        if not shift > 0:
            raise ValueError(f"ModelSamplingAuraFlow: shift must be above 0, got {shift}")
        return _patched("ModelSamplingAuraFlow", model, FlowSampling(shift=float(shift), multiplier=1.0))


class ModelSamplingFlux:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Samples the model as Flux does: rectified flow shifted by an amount that grows linearly with "
                   "the image's area, from base_shift at 256 tokens to max_shift at 4096.")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "max_shift": ("FLOAT", {"default": 1.15, "min": 0.0, "max": 100.0, "step": 0.01}),
            "base_shift": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 100.0, "step": 0.01}),
            "width": ("INT", {"default": 1024, "min": 16, "max": MAX_RESOLUTION, "step": 8}),
            "height": ("INT", {"default": 1024, "min": 16, "max": MAX_RESOLUTION, "step": 8}),
        }}

    def patch(self, model, max_shift, base_shift, width, height):
        from .model_sampling import FluxSampling

        return _patched("ModelSamplingFlux", model, FluxSampling(flux_shift(max_shift, base_shift, width, height)))


def flux_shift(max_shift: float, base_shift: float, width: int, height: int) -> float:
    """Flux's mu: linear in the number of 2x2 latent patches, base_shift at 256 and max_shift at 4096."""
    slope = (max_shift - base_shift) / (4096 - 256)
    return (width * height / (8 * 8 * 2 * 2)) * slope + (base_shift - slope * 256)


NODES = {cls.__name__: cls for cls in (ModelSamplingDiscrete, ModelSamplingContinuousEDM, ModelSamplingContinuousV,
                                       ModelSamplingAuraFlow, ModelSamplingFlux)}
