"""ControlNet and T2I-Adapter nodes under ComfyUI's names and inputs: ControlNetLoader, DiffControlNetLoader,
ControlNetApply, ControlNetApplyAdvanced, SetUnionControlNetType and ControlNetInpaintingAliMamaApply.

The apply nodes record a copy of the CONTROL_NET holding the hint image in each CONDITIONING entry's options
(``"control"``), chained to the ControlNet the entry already had (``previous_controlnet``); the SD model asks
it for residuals as it samples (:mod:`hearth_sd.controlnet`). Entries are copied, never changed in place: a
cached conditioning may feed other nodes. Imported when plugins load: torch only inside the functions.
"""

from __future__ import annotations

from typing import Any

from hearth.core.model_folders import model_folders
from hearth.core.models.loaders import NoModelLoaderError, load_model_file

Conditioning = list[list[Any]]

# comfy/cldm/control_types.py: the control types a union ControlNet is trained on, with its type numbers.
UNION_CONTROLNET_TYPES = {"openpose": 0, "depth": 1, "hed/pidi/scribble/ted": 2,
                          "canny/lineart/anime_lineart/mlsd": 3, "normal": 4, "segment": 5, "tile": 6, "repaint": 7}


def _load(node: str, name: str, model: Any = None) -> Any:
    path = model_folders().find("controlnet", name)
    options = {} if model is None else {"model": model}
    try:
        return load_model_file("controlnet", path, **options)
    except NoModelLoaderError as exc:
        raise NoModelLoaderError(f"{node}: {exc}") from None


def _check_control(node: str, control_net: Any) -> None:
    if not callable(getattr(control_net, "get_control", None)) or not callable(getattr(control_net, "copy", None)):
        raise TypeError(f"{node}: control_net is a {type(control_net).__name__}, not a loaded ControlNet; connect "
                        f"ControlNetLoader's output")


def _hint(node: str, control_net: Any, image: Any) -> Any:
    """The IMAGE ``[B, H, W, C]`` as the ``[B, C, H, W]`` hint, its channels checked against the network's."""
    if getattr(image, "ndim", 0) != 4:
        raise ValueError(f"{node}: image must be an IMAGE [B, H, W, C], got shape "
                         f"{list(getattr(image, 'shape', []))}")
    wanted = getattr(control_net, "hint_channels", None)
    if wanted is not None and image.shape[-1] != wanted and not (wanted == 1 and image.shape[-1] == 3):
        raise ValueError(f"{node}: image has {image.shape[-1]} channels but {control_net.name!r} takes "
                         f"{wanted}-channel hints: give an RGB image (convert RGBA or a mask to RGB first)")
    return image.movedim(-1, 1)


class ControlNetLoader:
    DISPLAY_NAME = "Load ControlNet Model"
    CATEGORY = "loaders"
    RETURN_TYPES = ("CONTROL_NET",)
    FUNCTION = "load_controlnet"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"control_net_name": (model_folders().list("controlnet"),)}}

    def load_controlnet(self, control_net_name: str) -> tuple[Any]:
        return (_load("ControlNetLoader", control_net_name),)


class DiffControlNetLoader:
    """ComfyUI's loader for "diff" ControlNets, stored as the difference to their base UNet: the MODEL's UNet
    weights are added back. A normal ControlNet file loads as with ControlNetLoader."""

    DISPLAY_NAME = "Load ControlNet Model (diff)"
    CATEGORY = "loaders"
    RETURN_TYPES = ("CONTROL_NET",)
    FUNCTION = "load_controlnet"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "control_net_name": (model_folders().list("controlnet"),)}}

    def load_controlnet(self, model: Any, control_net_name: str) -> tuple[Any]:
        if not hasattr(getattr(model, "patcher", None), "module"):
            raise TypeError("DiffControlNetLoader: model must be an SD MODEL (a checkpoint loader's output)")
        return (_load("DiffControlNetLoader", control_net_name, model),)


class ControlNetApply:
    """ComfyUI's deprecated one-conditioning form: the ControlNet on every step, on the positive only (the
    sampler gives the negative the same ControlNet, ``control_apply_to_uncond``)."""

    DISPLAY_NAME = "Apply ControlNet (OLD)"
    CATEGORY = "conditioning/controlnet"
    DEPRECATED = True
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "apply_controlnet"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "conditioning": ("CONDITIONING",),
            "control_net": ("CONTROL_NET",),
            "image": ("IMAGE",),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}),
        }}

    def apply_controlnet(self, conditioning: Conditioning, control_net: Any, image: Any,
                         strength: float) -> tuple[Conditioning]:
        if strength == 0:
            return (conditioning,)
        _check_control("ControlNetApply", control_net)
        hint = _hint("ControlNetApply", control_net, image)
        out = []
        for cond, options in conditioning:
            c_net = control_net.copy().set_cond_hint(hint, strength)
            if "control" in options:
                c_net.set_previous_controlnet(options["control"])
            out.append([cond, {**options, "control": c_net, "control_apply_to_uncond": True}])
        return (out,)


def _strength_and_range() -> dict[str, Any]:
    """The last inputs of the "Apply ControlNet" nodes with a schedule: how strongly, over which part of sampling
    (fresh dicts each call, so a caller that edits one cannot change another node's)."""
    return {
        "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}),
        "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}),
        "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}),
    }


class ControlNetApplyAdvanced:
    """One ControlNet copy per earlier ControlNet, shared by the positive and negative entries that had it, so
    the sampler evaluates it once for both (they batch together)."""

    DISPLAY_NAME = "Apply ControlNet"
    CATEGORY = "conditioning/controlnet"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    FUNCTION = "apply_controlnet"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "control_net": ("CONTROL_NET",),
            "image": ("IMAGE",),
            **_strength_and_range(),
        }, "optional": {"vae": ("VAE",)}}

    def apply_controlnet(self, positive: Conditioning, negative: Conditioning, control_net: Any, image: Any,
                         strength: float, start_percent: float, end_percent: float, vae: Any = None,
                         extra_concat: list[Any] | None = None, node: str = "ControlNetApplyAdvanced",
                         ) -> tuple[Conditioning, Conditioning]:
        if strength == 0:
            return (positive, negative)
        _check_control(node, control_net)
        hint = _hint(node, control_net, image)
        made: dict[int, Any] = {}  # id of the earlier ControlNet -> the copy chained to it
        out = []
        for conditioning in (positive, negative):
            entries = []
            for cond, options in conditioning:
                previous = options.get("control")
                c_net = made.get(id(previous))
                if c_net is None:
                    c_net = control_net.copy().set_cond_hint(hint, strength, (start_percent, end_percent), vae=vae,
                                                             extra_concat=extra_concat or [])
                    c_net.set_previous_controlnet(previous)
                    made[id(previous)] = c_net
                entries.append([cond, {**options, "control": c_net, "control_apply_to_uncond": False}])
            out.append(entries)
        return (out[0], out[1])


class SetUnionControlNetType:
    """Which control type a union ControlNet reads the hint as ("auto": none given, the network guesses). A plain
    ControlNet ignores it, as in ComfyUI."""

    DISPLAY_NAME = "SetUnionControlNetType"
    CATEGORY = "conditioning/controlnet"
    RETURN_TYPES = ("CONTROL_NET",)
    FUNCTION = "set_controlnet_type"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"control_net": ("CONTROL_NET",), "type": (["auto", *UNION_CONTROLNET_TYPES],)}}

    def set_controlnet_type(self, control_net: Any, type: str) -> tuple[Any]:
        _check_control("SetUnionControlNetType", control_net)
        if type != "auto" and type not in UNION_CONTROLNET_TYPES:
            raise ValueError(f"SetUnionControlNetType: type {type!r} is not one of auto, "
                             f"{', '.join(UNION_CONTROLNET_TYPES)}")
        control_net = control_net.copy()
        number = UNION_CONTROLNET_TYPES.get(type, -1)
        control_net.set_extra_arg("control_type", [number] if number >= 0 else [])
        return (control_net,)


class ControlNetInpaintingAliMamaApply:
    """ControlNetApplyAdvanced with a mask: for an inpainting ControlNet that takes the mask as an extra channel
    (AliMama's, made for SD3 and Flux), the masked part of the image is blanked and the mask handed on. The SD1 /
    SDXL ControlNets Hearth loads take no mask channel, so for them this is ControlNetApplyAdvanced on the image,
    as in ComfyUI."""

    DISPLAY_NAME = "ControlNetInpaintingAliMamaApply"
    CATEGORY = "conditioning/controlnet"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    FUNCTION = "apply_inpaint_controlnet"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "control_net": ("CONTROL_NET",),
            "vae": ("VAE",),
            "image": ("IMAGE",),
            "mask": ("MASK",),
            **_strength_and_range(),
        }}

    def apply_inpaint_controlnet(self, positive: Conditioning, negative: Conditioning, control_net: Any, vae: Any,
                                 image: Any, mask: Any, strength: float, start_percent: float,
                                 end_percent: float) -> tuple[Conditioning, Conditioning]:
        node = "ControlNetInpaintingAliMamaApply"
        _check_control(node, control_net)
        extra_concat = []
        if getattr(control_net, "concat_mask", False):
            import torch.nn.functional as F

            from hearth.core.images import center_crop_box

            mask = 1.0 - mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1])
            x, y, w, h = center_crop_box(mask.shape[-1], mask.shape[-2], image.shape[2], image.shape[1])
            keep = F.interpolate(mask[..., y:y + h, x:x + w], size=(image.shape[1], image.shape[2]),
                                 mode="bilinear", align_corners=False).round()
            image = image * keep.movedim(1, -1).repeat(1, 1, 1, image.shape[3])
            extra_concat = [mask]
        return ControlNetApplyAdvanced().apply_controlnet(positive, negative, control_net, image, strength,
                                                          start_percent, end_percent, vae=vae,
                                                          extra_concat=extra_concat, node=node)


NODES: dict[str, type] = {cls.__name__: cls for cls in (
    ControlNetLoader, DiffControlNetLoader, ControlNetApply, ControlNetApplyAdvanced, SetUnionControlNetType,
    ControlNetInpaintingAliMamaApply)}
