"""Frame operations on video latents ``[B, C, t, h, w]`` with ComfyUI's names and inputs, for any video family:
TrimVideoLatent (comfy_extras/nodes_wan.py), ReplaceVideoLatentFrames (nodes_latent.py) and
NormalizeVideoLatentStart (nodes_kandinsky5.py).

Frames run along axis 2. The nodes need no model; an image latent ``[B, C, h, w]`` is refused by name rather than
cut along its height, which is what ComfyUI's slicing would do to it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hearth.core.images import MAX_RESOLUTION

from .nodes_latent_transform import with_samples

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def video_samples(latent: dict[str, Any], node: str, name: str) -> torch.Tensor:
    samples = latent["samples"]
    if samples.ndim != 5:
        raise ValueError(f"{node}: {name} must be a video latent [B, C, t, h, w], got {list(samples.shape)}")
    return samples


class TrimVideoLatent:
    CATEGORY = "latent/video"
    EXPERIMENTAL = True
    DESCRIPTION = "Drop the first trim_amount latent frames of a video latent."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT",),
                             "trim_amount": ("INT", {"default": 0, "min": 0, "max": 99999})}}

    def op(self, samples: dict[str, Any], trim_amount: int) -> tuple[dict[str, Any]]:
        latent = video_samples(samples, "TrimVideoLatent", "samples")
        # Trimming past the end leaves no frame, as ComfyUI's slice does.
        return (with_samples(samples, latent[:, :, trim_amount:]),)


class ReplaceVideoLatentFrames:
    CATEGORY = "latent/batch"
    DESCRIPTION = "Replace a sequence of frames in a destination latent with frames from a source latent."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "destination": ("LATENT",),
            "index": ("INT", {"default": 0, "min": -MAX_RESOLUTION, "max": MAX_RESOLUTION, "step": 1,
                              "tooltip": "The first destination frame replaced; negative values count from the end."}),
        }, "optional": {"source": ("LATENT",)}}

    def op(self, destination: dict[str, Any], index: int, source: dict[str, Any] | None = None) -> tuple[dict[str, Any]]:
        if source is None:
            return (destination,)
        dest = video_samples(destination, "ReplaceVideoLatentFrames", "destination")
        frames = video_samples(source, "ReplaceVideoLatentFrames", "source")
        if index < 0:
            index += dest.shape[2]
        # As ComfyUI: a source that does not fit leaves the destination as it is, with a warning.
        if index > dest.shape[2] or index < 0:
            log.warning("ReplaceVideoLatentFrames: index %d is outside the destination's %d frames; nothing replaced",
                        index, dest.shape[2])
            return (destination,)
        if index + frames.shape[2] > dest.shape[2]:
            log.warning("ReplaceVideoLatentFrames: the source's %d frames do not fit in the destination's %d from "
                        "index %d; nothing replaced", frames.shape[2], dest.shape[2], index)
            return (destination,)
        if (frames.shape[1] != dest.shape[1] or frames.shape[-2:] != dest.shape[-2:]
                or frames.shape[0] not in (1, dest.shape[0])):
            raise ValueError(f"ReplaceVideoLatentFrames: source {list(frames.shape)} does not fit destination "
                             f"{list(dest.shape)}: batch, channels and frame size must match")
        out = dest.clone()
        out[:, :, index:index + frames.shape[2]] = frames.to(out)
        # ComfyUI returns the source's dict with the new samples, so the source's other keys come along.
        return (with_samples(source, out),)


def normalize_to_reference(source: torch.Tensor, reference: torch.Tensor, mean_low: float = 0.3,
                           mean_high: float = 0.35, std_low: float = 0.35, std_high: float = 0.5) -> torch.Tensor:
    """Each frame of ``source`` standardised (over channels and pixels) and given the reference frames' overall
    mean and standard deviation, each held within a band around the frame's own (ComfyUI's
    ``adaptive_mean_std_normalization``)."""
    import torch

    mean = source.mean(dim=(1, 3, 4), keepdim=True)
    std = source.std(dim=(1, 3, 4), keepdim=True)
    target_mean = torch.clamp(reference.mean(), mean - mean_low, mean + mean_high)
    target_std = torch.clamp(reference.std(), std - std_low, std + std_high)
    return (source - mean) / (std + 1e-8) * target_std + target_mean


class NormalizeVideoLatentStart:
    CATEGORY = "conditioning/video_models"
    DESCRIPTION = ("Normalizes the initial frames of a video latent to match the mean and standard deviation of "
                   "subsequent reference frames. Helps reduce differences between the starting frames and the rest "
                   "of the video.")
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "latent": ("LATENT",),
            "start_frame_count": ("INT", {"default": 4, "min": 1, "max": MAX_RESOLUTION, "step": 1,
                                          "tooltip": "Number of latent frames to normalize, counted from the start"}),
            "reference_frame_count": ("INT", {"default": 5, "min": 1, "max": MAX_RESOLUTION, "step": 1,
                                              "tooltip": "Number of latent frames after the start frames to use as "
                                                         "reference"}),
        }}

    def op(self, latent: dict[str, Any], start_frame_count: int, reference_frame_count: int) -> tuple[dict[str, Any]]:
        samples = video_samples(latent, "NormalizeVideoLatentStart", "latent")
        if samples.shape[2] <= 1:
            return (latent,)
        if start_frame_count >= samples.shape[2]:
            raise ValueError(f"NormalizeVideoLatentStart: start_frame_count {start_frame_count} leaves no reference "
                             f"frame in a latent of {samples.shape[2]} frames; use fewer start frames")
        out = samples.clone()
        # ComfyUI's reference window: up to reference_frame_count frames after the start, never more than t - 1.
        reference = out[:, :, start_frame_count:start_frame_count + min(reference_frame_count, samples.shape[2] - 1)]
        out[:, :, :start_frame_count] = normalize_to_reference(out[:, :, :start_frame_count], reference)
        return (with_samples(latent, out),)


NODES = {cls.__name__: cls for cls in (TrimVideoLatent, ReplaceVideoLatentFrames, NormalizeVideoLatentStart)}
