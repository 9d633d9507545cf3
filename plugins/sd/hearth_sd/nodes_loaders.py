"""Loader nodes with ComfyUI's names, inputs and outputs: CheckpointLoaderSimple, VAELoader, CLIPLoader.

Each lists its model folder (``hearth.core.model_folders``) in a combo input and resolves the chosen name there; the
file is loaded once per process (:mod:`hearth_sd.loaders`), so re-running a workflow whose downstream inputs
changed never reads the weights again.
"""

from __future__ import annotations

from typing import Any

from hearth.core.model_folders import model_folders

CLIP_TYPES = ["stable_diffusion"]  # ComfyUI's other types are other families: plugins add them (below)


def plugin_loaders(kind: str) -> dict[str, Any]:
    """Loaders other plugins registered for a folder kind (``register_model_loaders``), by type or format name."""
    from hearth.core.plugins import active_plugins

    plugins = active_plugins()
    if plugins is None:
        return {}
    found = plugins.resolve_named("register_model_loaders", "model loader")
    return {name: load for (for_kind, name), load in found.items() if for_kind == kind}


def format_loader(kind: str, path: Any) -> Any:
    """The plugin loader for the detected format of ``path``, or None when no plugin claims it (SD's own files)."""
    loaders = plugin_loaders(kind)
    if not loaders:
        return None
    from hearth.core.models import AmbiguousModelError, UnknownModelError, detect_with_plugins
    from hearth.core.plugins import active_plugins

    try:
        found = detect_with_plugins(path, active_plugins())
    except (UnknownModelError, AmbiguousModelError):
        return None  # this plugin's own loader names what is wrong with the file
    return loaders.get(found.name)


class CheckpointLoaderSimple:
    DISPLAY_NAME = "Load Checkpoint"
    CATEGORY = "loaders"
    DESCRIPTION = "Loads a diffusion model checkpoint; diffusion models are used to denoise latents."
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = ("The model used for denoising latents.",
                       "The CLIP model used for encoding text prompts.",
                       "The VAE model used for encoding and decoding images to and from latent space.")
    FUNCTION = "load_checkpoint"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "ckpt_name": (model_folders().list("checkpoints"), {"tooltip": "The name of the checkpoint (model) to load."}),
        }}

    def load_checkpoint(self, ckpt_name: str) -> tuple[Any, Any, Any]:
        from . import loaders

        folders = model_folders()
        return loaders.checkpoint(folders.find("checkpoints", ckpt_name), embeddings=folders.folders("embeddings"))


class VAELoader:
    DISPLAY_NAME = "Load VAE"
    CATEGORY = "loaders"
    RETURN_TYPES = ("VAE",)
    FUNCTION = "load_vae"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"vae_name": (model_folders().list("vae"),)}}

    def load_vae(self, vae_name: str) -> tuple[Any]:
        from . import loaders

        path = model_folders().find("vae", vae_name)
        load = format_loader("vae", path)
        return (load(path) if load is not None else loaders.vae(path),)


class CLIPLoader:
    DISPLAY_NAME = "Load CLIP"
    CATEGORY = "advanced/loaders"
    DESCRIPTION = ("Loads a text encoder on its own: stable_diffusion takes CLIP-L (SD1.x) or OpenCLIP ViT-H (SD2.x); "
                   "other types come from the plugins of their model families.")
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load_clip"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "clip_name": (model_folders().list("text_encoders"),),
            "type": (CLIP_TYPES + [t for t in plugin_loaders("text_encoders") if t not in CLIP_TYPES],),
        }, "optional": {
            "device": (["default", "cpu"], {"advanced": True}),
        }}

    def load_clip(self, clip_name: str, type: str = "stable_diffusion", device: str = "default") -> tuple[Any]:
        from . import loaders

        folders = model_folders()
        if type not in CLIP_TYPES:
            load = plugin_loaders("text_encoders").get(type)
            if load is None:
                raise ValueError(f"CLIPLoader: no installed plugin loads text encoders of type {type!r}")
            return (load(folders.find("text_encoders", clip_name), device="cpu" if device == "cpu" else None),)
        return (loaders.text_encoder(folders.find("text_encoders", clip_name), folders.folders("embeddings"),
                                     device="cpu" if device == "cpu" else None),)


NODES = {cls.__name__: cls for cls in (CheckpointLoaderSimple, VAELoader, CLIPLoader)}
