"""Per-frame classifier-free guidance for video batches, with ComfyUI's names and inputs: VideoLinearCFGGuidance and
VideoTriangleCFGGuidance (comfy_extras/nodes_video_model.py).

Each returns a MODEL clone whose ``sampler_cfg_function`` (the MODEL protocol's guidance hook, docs/data-types.md)
guides the batch's items -- a video model's frames -- with different scales: from ``min_cfg`` on the first frame
to the sampler's cfg on the last (linear), or rising to the cfg in the middle and back (triangle). The function
works in noise space, ``uncond + scale * (cond - uncond)``, as ComfyUI's does; any MODEL with model_options takes
it, so it also serves a batch of still images.
"""

from __future__ import annotations

from typing import Any

_INPUTS = {"required": {"model": ("MODEL",),
                        "min_cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.5, "round": 0.01})}}


def _clone(node: str, model: Any) -> Any:
    if not callable(getattr(model, "clone", None)) or not isinstance(getattr(model, "model_options", None), dict):
        raise ValueError(f"{node}: model is not a MODEL with model_options ({type(model).__name__}); connect a "
                         "checkpoint or diffusion-model loader's MODEL")
    return model.clone()


def _set_cfg_function(model: Any, fn: Any) -> Any:
    setter = getattr(model, "set_model_sampler_cfg_function", None)
    if callable(setter):
        setter(fn)
    else:
        model.model_options["sampler_cfg_function"] = fn
    return model


def linear_scales(frames: int, min_cfg: float, cfg: float) -> Any:
    import torch

    return torch.linspace(min_cfg, cfg, frames)


def triangle_scales(frames: int, min_cfg: float, cfg: float) -> Any:
    """0 at both ends rising to 1 in the middle (a triangle wave of period 1 over 0..1), mapped to min_cfg..cfg."""
    import torch

    t = torch.linspace(0, 1, frames)
    return 2 * (t - torch.floor(t + 0.5)).abs() * (cfg - min_cfg) + min_cfg


def _guidance(scales: Any, min_cfg: float) -> Any:
    def per_frame(args: dict[str, Any]) -> Any:
        cond, uncond = args["cond"], args["uncond"]
        shape = (cond.shape[0],) + (1,) * (cond.ndim - 1)
        scale = scales(cond.shape[0], min_cfg, args["cond_scale"]).to(cond.device, cond.dtype).reshape(shape)
        return uncond + scale * (cond - uncond)

    return per_frame


class VideoLinearCFGGuidance:
    CATEGORY = "sampling/video_models"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return _INPUTS

    def patch(self, model: Any, min_cfg: float) -> tuple[Any]:
        return (_set_cfg_function(_clone("VideoLinearCFGGuidance", model), _guidance(linear_scales, min_cfg)),)


class VideoTriangleCFGGuidance:
    CATEGORY = "sampling/video_models"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return _INPUTS

    def patch(self, model: Any, min_cfg: float) -> tuple[Any]:
        return (_set_cfg_function(_clone("VideoTriangleCFGGuidance", model), _guidance(triangle_scales, min_cfg)),)


NODES = {cls.__name__: cls for cls in (VideoLinearCFGGuidance, VideoTriangleCFGGuidance)}
