"""CLIP vision nodes with ComfyUI's names, inputs and outputs: CLIPVisionLoader, CLIPVisionEncode,
unCLIPConditioning and unCLIPCheckpointLoader.

CLIP_VISION is :class:`hearth_sd.clip_vision_loader.CLIPVision`; CLIP_VISION_OUTPUT its ``encode_image`` result
(``image_embeds``, ``last_hidden_state``, ``penultimate_hidden_states``...). unCLIPConditioning only records the
image in the conditioning (``unclip_conditioning``); the model turns it into its ADM input when sampling
(:mod:`hearth_sd.unclip`): SD2.1-unclip checkpoints and SDXL ("revision") use it, other models ignore it, as in
ComfyUI.
"""

from __future__ import annotations

import logging
from typing import Any

from hearth.core.model_folders import model_folders

log = logging.getLogger(__name__)


def _check_output(value: Any, node: str) -> Any:
    if getattr(value, "image_embeds", None) is None:
        raise ValueError(f"{node}: clip_vision_output is not a CLIP_VISION_OUTPUT (no image_embeds); connect a "
                         f"CLIPVisionEncode output")
    return value


class CLIPVisionLoader:
    DISPLAY_NAME = "Load CLIP Vision"
    CATEGORY = "loaders"
    RETURN_TYPES = ("CLIP_VISION",)
    FUNCTION = "load_clip"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"clip_name": (model_folders().list("clip_vision"),)}}

    def load_clip(self, clip_name: str) -> tuple[Any]:
        from hearth.core.models.loaders import NoModelLoaderError, load_model_file

        from .clip_vision import UnsupportedVisionModelError
        from .clip_vision_loader import what_it_is

        path = model_folders().find("clip_vision", clip_name)
        try:
            return (load_model_file("clip_vision", path),)
        except (NoModelLoaderError, UnsupportedVisionModelError) as exc:
            raise ValueError(f"CLIPVisionLoader: clip_name {clip_name!r} is not a CLIP vision model Hearth loads: "
                             f"{what_it_is(path)}{exc}") from None


class CLIPVisionEncode:
    DISPLAY_NAME = "CLIP Vision Encode"
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CLIP_VISION_OUTPUT",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"clip_vision": ("CLIP_VISION",), "image": ("IMAGE",),
                             "crop": (["center", "none"],)}}

    def encode(self, clip_vision: Any, image: Any, crop: str = "center") -> tuple[Any]:
        if not hasattr(clip_vision, "encode_image"):
            raise ValueError("CLIPVisionEncode: clip_vision is not a CLIP vision model; connect CLIPVisionLoader")
        if crop not in ("center", "none"):
            raise ValueError(f"CLIPVisionEncode: crop must be 'center' or 'none', got {crop!r}")
        try:
            return (clip_vision.encode_image(image, crop=crop == "center"),)
        except ValueError as exc:
            raise ValueError(f"CLIPVisionEncode: {exc}") from None


class unCLIPConditioning:  # noqa: N801 - ComfyUI's node name
    DISPLAY_NAME = "unCLIP Conditioning"
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "apply_adm"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "conditioning": ("CONDITIONING",),
            "clip_vision_output": ("CLIP_VISION_OUTPUT",),
            "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}),
            "noise_augmentation": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01}),
        }}

    def apply_adm(self, conditioning: list, clip_vision_output: Any, strength: float,
                  noise_augmentation: float) -> tuple[list]:
        if strength == 0:
            return (conditioning,)
        _check_output(clip_vision_output, "unCLIPConditioning")
        entry = {"clip_vision_output": clip_vision_output, "strength": strength,
                 "noise_augmentation": noise_augmentation}
        out = []
        for cond, options in conditioning:
            options = dict(options)
            # Appended: several unCLIPConditioning nodes in a row merge their images (ComfyUI's append=True).
            options["unclip_conditioning"] = [*options.get("unclip_conditioning", ()), entry]
            out.append([cond, options])
        return (out,)


class unCLIPCheckpointLoader:  # noqa: N801 - ComfyUI's node name
    DISPLAY_NAME = "unCLIP Checkpoint Loader"
    CATEGORY = "loaders"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE", "CLIP_VISION")
    FUNCTION = "load_checkpoint"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"ckpt_name": (model_folders().list("checkpoints"),)}}

    def load_checkpoint(self, ckpt_name: str) -> tuple[Any, Any, Any, Any]:
        from hearth.core.models.loaders import NoModelLoaderError, load_model_file

        from .clip_vision_loader import checkpoint_vision

        path = model_folders().find("checkpoints", ckpt_name)
        try:
            model, clip, vae = load_model_file("checkpoints", path)
        except NoModelLoaderError as exc:
            raise NoModelLoaderError(f"unCLIPCheckpointLoader: {exc}") from None
        vision = checkpoint_vision(path)
        if vision is None:
            # As ComfyUI: a checkpoint without an image encoder loads, its CLIP_VISION output is empty.
            log.warning("unCLIPCheckpointLoader: %s has no CLIP vision tower (not an unCLIP checkpoint); its "
                        "CLIP_VISION output is None: load one with CLIPVisionLoader", ckpt_name)
        return model, clip, vae, vision


NODES = {cls.__name__: cls for cls in (CLIPVisionLoader, CLIPVisionEncode, unCLIPConditioning, unCLIPCheckpointLoader)}
