"""ComfyUI's generic loader nodes (CheckpointLoaderSimple, VAELoader, CLIPLoader, UNETLoader), for every family.

A default-tier plugin (``trylast``, so a pack may deliberately replace a node). Each node lists its model folder
(``hearth.core.model_folders``) in a combo input, resolves the chosen name there and loads it through
:func:`hearth.core.models.loaders.load_model_file`: the file's format is detected and the loader a family plugin
registered for it (``register_model_loaders``) does the work, so one node loads every installed family. Families
share one load cache (:mod:`hearth.core.models.file_cache`): re-running a workflow whose downstream inputs changed
never reads the weights again.

Imported when plugins load: no torch here.
"""

from __future__ import annotations

from typing import Any

from hearth.core.hookspecs import hookimpl
from hearth.core.model_folders import model_folders
from hearth.core.models.loaders import NoModelLoaderError, load_model_file, model_loaders

# ComfyUI's CLIPLoader types: every one is listed whether or not an installed plugin loads it, so a saved workflow
# (or a template) still opens and validates, and the load names the family that is missing. Types plugins register
# beyond these are added after them.
CLIP_TYPES = ["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos", "lumina2",
              "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image", "flux2", "ovis",
              "longcat_image", "cogvideox", "lens", "pixeldit", "ideogram4", "boogu", "krea2", "joyimage", "minimax",
              "flux3", "moss_image", "mage", "fibo2"]
PIXEL_SPACE = "pixel_space"  # VAELoader's entry for models that work on pixels and take no VAE file
WEIGHT_DTYPES = ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]


def _device(device: str) -> str | None:
    return "cpu" if device == "cpu" else None


def _load(node: str, kind: str, path: Any, **options: Any) -> Any:
    try:
        return load_model_file(kind, path, **options)
    except NoModelLoaderError as exc:
        raise NoModelLoaderError(f"{node}: {exc}") from None


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
        path = model_folders().find("checkpoints", ckpt_name)
        return tuple(_load("CheckpointLoaderSimple", "checkpoints", path))


class VAELoader:
    DISPLAY_NAME = "Load VAE"
    CATEGORY = "loaders"
    RETURN_TYPES = ("VAE",)
    FUNCTION = "load_vae"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"vae_name": ([*model_folders().list("vae"), PIXEL_SPACE],)}}

    def load_vae(self, vae_name: str) -> tuple[Any]:
        if vae_name == PIXEL_SPACE:
            raise NoModelLoaderError("VAELoader: pixel_space is for model families that denoise pixels (PixelDiT, "
                                     "Chroma Radiance), which no installed plugin provides yet; choose a VAE file")
        return (_load("VAELoader", "vae", model_folders().find("vae", vae_name)),)


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
            "type": (CLIP_TYPES + [t for t in model_loaders("text_encoders") if t not in CLIP_TYPES],),
        }, "optional": {
            "device": (["default", "cpu"], {"advanced": True}),
        }}

    def load_clip(self, clip_name: str, type: str = "stable_diffusion", device: str = "default") -> tuple[Any]:
        path = model_folders().find("text_encoders", clip_name)
        return (_load("CLIPLoader", "text_encoders", path, type=type, device=_device(device)),)


class UNETLoader:
    DISPLAY_NAME = "Load Diffusion Model"
    CATEGORY = "advanced/loaders"
    DESCRIPTION = ("Loads a diffusion model on its own (models/diffusion_models): any family whose plugin is "
                   "installed, detected from the file.")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load_unet"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "unet_name": (model_folders().list("diffusion_models"),),
            "weight_dtype": (WEIGHT_DTYPES, {"advanced": True}),
        }}

    def load_unet(self, unet_name: str, weight_dtype: str = "default") -> tuple[Any]:
        path = model_folders().find("diffusion_models", unet_name)
        return (_load("UNETLoader", "diffusion_models", path, weight_dtype=weight_dtype),)


NODES = {cls.__name__: cls for cls in (CheckpointLoaderSimple, VAELoader, CLIPLoader, UNETLoader)}


@hookimpl(trylast=True)
def register_nodes() -> dict[str, type]:
    return dict(NODES)
