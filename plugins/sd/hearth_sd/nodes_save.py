"""ComfyUI's model savers (comfy_extras/nodes_model_merging.py): CheckpointSave, ModelSave, CLIPSave, VAESave.

They write safetensors files into the output folder (``{prefix}_{counter:05}_.safetensors``, the counter continuing
what the folder holds) in the layouts checkpoints use, with every patch of the value applied (a merge, a LoRA): a
checkpoint's UNet under ``model.diffusion_model.``, its VAE under ``first_stage_model.``, its text encoders under
the family's prefixes (SD1 ``cond_stage_model.transformer.``, SD2 ``cond_stage_model.model.``, SDXL
``conditioner.embedders.N...``). CLIPSave writes one file per encoder in Hugging Face's layout without prefix
(``clip_l``, ``clip_g``, ``clip_h``), as ComfyUI's does. Metadata: ComfyUI's (``modelspec.*`` for SDXL, the
prediction, ``prompt`` and the workflow), plus Hearth's ``hearth.sd.config`` (attention heads, which shapes cannot
tell for non-standard widths) so a saved file loads back as the very same model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.core import context
from hearth.core.context import atomic_path, save_path

if TYPE_CHECKING:
    import torch

_ARCHITECTURES = {"sdxl": "stable-diffusion-xl-v1-base", "sdxl_refiner": "stable-diffusion-xl-v1-refiner"}
_UNET_KEY = "diffusion_model."
# Families whose checkpoint holds a part these nodes cannot be given (unCLIP's image encoder).
UNSAVED_FAMILIES = ("sd2_unclip",)


def _require(node: str, name: str, value: Any, attribute: str, what: str) -> None:
    if not hasattr(value, attribute):
        raise ValueError(f"{node}: {name} is not {what} Hearth's SD plugin can save ({type(value).__name__}); "
                         "connect the output of an SD checkpoint loader or merge node")


def unet_tensors(model: Any) -> dict[str, torch.Tensor]:
    """The MODEL's UNet weights, patches applied, under a checkpoint's ``model.diffusion_model.`` prefix."""
    return {"model." + key: patched[0] for key, patched in model.get_key_patches(_UNET_KEY).items()}


def clip_tensors(clip: Any) -> dict[str, dict[str, torch.Tensor]]:
    """Each text encoder's weights (patches applied) by encoder name, under the module's own keys."""
    found: dict[str, dict[str, torch.Tensor]] = {}
    patched = clip.get_key_patches()
    for name in clip.patchers_by_name():
        prefix = clip.key_prefix(name)
        found[name] = {key[len(prefix):]: value[0] for key, value in patched.items() if key.startswith(prefix)}
    return found


def checkpoint_clip_tensors(clip: Any) -> dict[str, torch.Tensor]:
    """The CLIP's encoders under their family's checkpoint prefixes."""
    from .families import get_family

    specs = {spec.name: spec for spec in get_family(clip.family).text_encoders}
    return {specs[name].prefix + key: value for name, tensors in clip_tensors(clip).items()
            for key, value in tensors.items()}


def vae_tensors(vae: Any) -> dict[str, torch.Tensor]:
    return {key: value[0] for key, value in vae.get_key_patches().items()}


def _workflow_metadata(prompt: Any, extra_pnginfo: Any) -> dict[str, str]:
    metadata = {"prompt": json.dumps(prompt) if prompt is not None else ""}
    for key, value in (extra_pnginfo or {}).items():
        metadata[key] = json.dumps(value)
    return metadata


def model_metadata(model: Any, clip: Any = None) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """ComfyUI's checkpoint metadata and extra keys for ``model`` (and Hearth's config of ``clip``'s encoders)."""
    import torch

    from .checkpoint import CONFIG_METADATA_KEY, FAMILY_METADATA_KEY
    from .formats import PREDICTION_METADATA_KEY

    metadata: dict[str, str] = {}
    extra: dict[str, torch.Tensor] = {}
    family = model.family
    if family in _ARCHITECTURES:
        metadata.update({"modelspec.architecture": _ARCHITECTURES[family], "modelspec.sai_model_spec": "1.0.0",
                         "modelspec.implementation": "sgm"})
    prediction = model.sampling.prediction
    if prediction == "v":
        metadata["modelspec.predict_key"] = "v"
        extra["v_pred"] = torch.tensor([])  # how ComfyUI's loader tells a v-prediction checkpoint
    elif prediction == "eps":
        metadata["modelspec.predict_key"] = "epsilon"
    if prediction in ("eps", "v"):
        metadata[PREDICTION_METADATA_KEY] = "v" if prediction == "v" else "epsilon"  # what Hearth's loader reads
    unet = model.diffusion.unet.config
    config: dict[str, Any] = {"unet": {"num_heads": unet.num_heads, "num_head_channels": unet.num_head_channels}}
    if clip is not None:
        config["text_heads"] = {name: p.module.config.heads for name, p in clip.patchers_by_name().items()}
    metadata[CONFIG_METADATA_KEY] = json.dumps(config, sort_keys=True)
    metadata[FAMILY_METADATA_KEY] = family
    return metadata, extra


def write_file(filename_prefix: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict[str, str]:
    """Write ``tensors`` as ``{prefix}_{counter:05}_.safetensors`` in the output folder; returns its UI entry."""
    from hearth.core.models import write_safetensors

    folder = context.folders().for_type("output")
    directory, base, counter = save_path(filename_prefix, folder, 0, 0)
    name = f"{base}_{counter:05}_.safetensors"
    with atomic_path(directory / name) as temp:
        write_safetensors({k: v.contiguous() for k, v in tensors.items()}, Path(temp), metadata)
    subfolder = directory.relative_to(folder.resolve()).as_posix()
    return {"filename": name, "subfolder": "" if subfolder == "." else subfolder, "type": "output"}


def _hidden() -> dict[str, Any]:
    return {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


class CheckpointSave:
    DISPLAY_NAME = "Save Checkpoint"
    CATEGORY = "advanced/model_merging"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "clip": ("CLIP",), "vae": ("VAE",),
                             "filename_prefix": ("STRING", {"default": "checkpoints/ComfyUI"})},
                "hidden": _hidden()}

    def save(self, model: Any, clip: Any, vae: Any, filename_prefix: str, prompt: Any = None,
             extra_pnginfo: Any = None) -> dict[str, Any]:
        _require("CheckpointSave", "model", model, "diffusion", "an SD MODEL")
        _require("CheckpointSave", "clip", clip, "clip", "an SD CLIP")
        _require("CheckpointSave", "vae", vae, "vae", "an SD VAE")
        if clip.family != model.family:
            raise ValueError(f"CheckpointSave: the model is {model.family} and the clip {clip.family}; a checkpoint "
                             "holds the text encoders of its own family")
        if model.family in UNSAVED_FAMILIES:
            raise ValueError(f"CheckpointSave: {model.family} checkpoints are not saved: their CLIP vision tower has "
                             "no input on this node (ComfyUI's would drop it, leaving a file that does not load as "
                             "unCLIP); save the parts with ModelSave, CLIPSave and VAESave")
        metadata, tensors = model_metadata(model, clip)
        metadata["modelspec.title"] = Path(filename_prefix).name
        tensors.update(unet_tensors(model))
        tensors.update(checkpoint_clip_tensors(clip))
        tensors.update({"first_stage_model." + k: v for k, v in vae_tensors(vae).items()})
        write_file(filename_prefix, tensors, {**metadata, **_workflow_metadata(prompt, extra_pnginfo)})
        return {}


class ModelSave:
    CATEGORY = "advanced/model_merging"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",),
                             "filename_prefix": ("STRING", {"default": "diffusion_models/ComfyUI"})},
                "hidden": _hidden()}

    def save(self, model: Any, filename_prefix: str, prompt: Any = None, extra_pnginfo: Any = None) -> dict[str, Any]:
        _require("ModelSave", "model", model, "diffusion", "an SD MODEL")
        metadata, tensors = model_metadata(model)
        tensors.update(unet_tensors(model))
        write_file(filename_prefix, tensors, {**metadata, **_workflow_metadata(prompt, extra_pnginfo)})
        return {}


class CLIPSave:
    CATEGORY = "advanced/model_merging"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"clip": ("CLIP",), "filename_prefix": ("STRING", {"default": "clip/ComfyUI"})},
                "hidden": _hidden()}

    def save(self, clip: Any, filename_prefix: str, prompt: Any = None, extra_pnginfo: Any = None) -> dict[str, Any]:
        from .checkpoint import CONFIG_METADATA_KEY
        from .clip_text import CLIPTextEncoder
        from .loaders import TEXT_KIND_METADATA_KEY, open_clip_to_hf

        _require("CLIPSave", "clip", clip, "patchers_by_name", "an SD CLIP")
        workflow = {"format": "pt", **_workflow_metadata(prompt, extra_pnginfo)}
        patchers = clip.patchers_by_name()
        for name, tensors in clip_tensors(clip).items():
            module = patchers[name].module
            if not isinstance(module, CLIPTextEncoder):
                tensors = open_clip_to_hf(tensors)
            config = {"text_heads": {name: module.config.heads}}
            metadata = {**workflow, CONFIG_METADATA_KEY: json.dumps(config), TEXT_KIND_METADATA_KEY: name}
            write_file(f"{filename_prefix}_clip_{name}", tensors, metadata)
        return {}


class VAESave:
    CATEGORY = "advanced/model_merging"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"vae": ("VAE",), "filename_prefix": ("STRING", {"default": "vae/ComfyUI_vae"})},
                "hidden": _hidden()}

    def save(self, vae: Any, filename_prefix: str, prompt: Any = None, extra_pnginfo: Any = None) -> dict[str, Any]:
        _require("VAESave", "vae", vae, "vae", "an SD VAE")
        write_file(filename_prefix, vae_tensors(vae), _workflow_metadata(prompt, extra_pnginfo))
        return {}


NODES = {cls.__name__: cls for cls in (CheckpointSave, ModelSave, CLIPSave, VAESave)}
