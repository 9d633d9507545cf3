"""AnimateDiff nodes: load a motion model, put it on an SD1 MODEL, and say how to cut long clips into windows.

A smaller set than AnimateDiff-Evolved's, with the same roles::

    LoadAnimateDiffModel (model_name)                              -> MOTION_MODEL
    AnimateDiffContextOptions (context_length, context_overlap,
                               context_schedule, fuse_method)      -> CONTEXT_OPTIONS
    ApplyAnimateDiffModel (model, motion_model, motion_scale,
                           [context_options], [temporal_norm])     -> MODEL

The MODEL out samples with any KSampler: the latent batch is the clip (``EmptyLatentImage`` with
``batch_size`` 16 is 16 frames). Motion files live in ``models/animatediff_models`` (ComfyUI's folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.model_folders import TinyModel, model_folders

KIND = "animatediff_models"
SCHEDULES = ("uniform", "sliding")  # animatediff_context.SCHEDULES, without importing torch here
FUSE_METHODS = ("pyramid", "flat", "overlap-linear")
NORMS = ("frame", "video")

def motion_model_files() -> list[str]:
    return model_folders().list(KIND)


def load_motion_model_file(path: str | Path) -> Any:
    """A MOTION_MODEL for a file, shared while any node output holds it (the core's load cache)."""
    from hearth.core.models import load_once

    from .animatediff_module import load_motion_model
    from .animatediff_sampling import MotionModelFile

    path = Path(path)
    return load_once(KIND, path, lambda: MotionModelFile(load_motion_model(path), path))


class LoadAnimateDiffModel:
    DISPLAY_NAME = "Load AnimateDiff Model"
    CATEGORY = "video/animatediff"
    DESCRIPTION = ("Load an AnimateDiff motion module for SD1.x (v1, v2 or v3, .ckpt or .safetensors) from "
                   "models/animatediff_models.")
    RETURN_TYPES = ("MOTION_MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model_name": (motion_model_files(), {"tooltip": "The motion module file."}),
        }}

    def load(self, model_name: str) -> tuple[Any]:
        return (load_motion_model_file(model_folders().find(KIND, model_name)),)


class AnimateDiffContextOptions:
    DISPLAY_NAME = "AnimateDiff Context Options"
    CATEGORY = "video/animatediff"
    DESCRIPTION = ("Sample clips longer than the motion model's limit (or its 16-frame training length) as "
                   "overlapping windows of frames, blended where they overlap.")
    RETURN_TYPES = ("CONTEXT_OPTIONS",)
    FUNCTION = "create"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "context_length": ("INT", {"default": 16, "min": 1, "max": 128,
                                       "tooltip": "Frames per window (16: what the motion models were trained on)."}),
            "context_overlap": ("INT", {"default": 4, "min": 0, "max": 127,
                                        "tooltip": "Frames at least shared by neighbouring windows."}),
            "context_schedule": (list(SCHEDULES), {
                "tooltip": "uniform: the fewest windows, spread evenly; sliding: a window every "
                           "length - overlap frames, the last one ending on the last frame."}),
            "fuse_method": (list(FUSE_METHODS), {
                "tooltip": "How a frame's results from several windows are weighted: pyramid (the window's "
                           "middle counts most), flat (equally), overlap-linear (ramps over the shared frames)."}),
        }}

    def create(self, context_length: int, context_overlap: int, context_schedule: str,
               fuse_method: str) -> tuple[Any]:
        from .animatediff_context import ContextOptions

        return (ContextOptions(context_length, context_overlap, context_schedule, fuse_method),)


class ApplyAnimateDiffModel:
    DISPLAY_NAME = "Apply AnimateDiff Model"
    CATEGORY = "video/animatediff"
    DESCRIPTION = ("Put a motion model on an SD1.x MODEL: the latent batch it samples becomes the frames of one "
                   "clip, which the motion model keeps consistent over time.")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": ("MODEL",),
                "motion_model": ("MOTION_MODEL",),
                "motion_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01,
                                           "tooltip": "Multiplies what the motion modules add (1: as trained, "
                                                      "0: no motion, every frame on its own)."}),
            },
            "optional": {
                "context_options": ("CONTEXT_OPTIONS", {"tooltip": "Windows for clips longer than one pass."}),
                "temporal_norm": (list(NORMS), {
                    "default": "frame",
                    "tooltip": "frame: normalise each frame on its own, as the published modules were trained "
                               "(and ComfyUI runs them); video: over the whole clip, as diffusers does."}),
            },
        }

    def apply(self, model: Any, motion_model: Any, motion_scale: float, context_options: Any = None,
              temporal_norm: str = "frame") -> tuple[Any]:
        from .animatediff_sampling import AnimateDiffModel

        inner = model.inner if isinstance(model, AnimateDiffModel) else model  # a second Apply replaces the first
        if not hasattr(inner, "patcher") or not hasattr(inner, "denoise"):
            raise ValueError(f"ApplyAnimateDiffModel needs an SD1.x MODEL (from a checkpoint loader); got "
                             f"{type(model).__name__}")
        return (AnimateDiffModel(inner.clone(), motion_model, motion_scale, context_options, temporal_norm),)


NODES = {
    "LoadAnimateDiffModel": LoadAnimateDiffModel,
    "ApplyAnimateDiffModel": ApplyAnimateDiffModel,
    "AnimateDiffContextOptions": AnimateDiffContextOptions,
}


def _write_tiny(path: Path, seed: int) -> None:
    from .animatediff_tiny import write_tiny_motion_model

    write_tiny_motion_model(path, seed)


TINY_MODELS = {
    "animatediff": TinyModel(KIND, "tiny-animatediff-sd1.safetensors", _write_tiny,
                             "AnimateDiff v2 motion module for the tiny SD1 checkpoint (LoadAnimateDiffModel)"),
}
