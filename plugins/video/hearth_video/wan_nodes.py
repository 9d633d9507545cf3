"""Wan 2.1 text-to-video nodes with ComfyUI's names and inputs, as its Wan workflows use them.

    UNETLoader (unet_name, weight_dtype)                 -> MODEL     any family a plugin registered a loader for
    CLIPLoader (clip_name, type "wan")                   -> CLIP      the SD plugin's node; this part adds "wan"
    VAELoader (vae_name)                                 -> VAE       the SD plugin's node; this part adds the Wan VAE
    EmptyHunyuanLatentVideo (width, height, length, batch_size) -> LATENT [B, 16, (length-1)//4 + 1, H/8, W/8]
    ModelSamplingSD3 (model, shift)                      -> MODEL     flow-matching sampling with that shift

The SD plugin's CLIPLoader and VAELoader learn Wan through ``register_model_loaders`` (see :func:`model_loaders`);
nothing here imports the SD plugin. Imported when plugins load: torch is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.images import MAX_RESOLUTION
from hearth.core.model_folders import TinyModel, model_folders

WEIGHT_DTYPES = ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]
TINY_DIFFUSION_MODEL = "tiny-wan.safetensors"
TINY_TEXT_ENCODER = "tiny-umt5.safetensors"


def _diffusion_loaders() -> dict[str, Any]:
    from hearth.core.plugins import active_plugins

    plugins = active_plugins()
    if plugins is None:
        return {name: load for (kind, name), load in model_loaders().items() if kind == "diffusion_models"}
    found = plugins.resolve_named("register_model_loaders", "model loader")
    return {name: load for (kind, name), load in found.items() if kind == "diffusion_models"}


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
        from hearth.core.models import UnknownModelError, detect_with_plugins
        from hearth.core.plugins import active_plugins, load_plugins

        path = model_folders().find("diffusion_models", unet_name)
        plugins = active_plugins() or load_plugins()
        loaders = _diffusion_loaders()
        try:
            found = detect_with_plugins(path, plugins)
        except UnknownModelError as exc:
            raise ValueError(f"UNETLoader: {exc}") from None
        load = loaders.get(found.name)
        if load is None:
            raise ValueError(f"UNETLoader: {unet_name} is a {found.name} model, which no installed plugin loads as "
                             f"a standalone diffusion model; load it with its family's loader node")
        return (load(path, weight_dtype=weight_dtype),)


class EmptyHunyuanLatentVideo:
    DISPLAY_NAME = "EmptyHunyuanLatentVideo"
    CATEGORY = "latent/video"
    DESCRIPTION = "An empty video latent: 16 channels, 4x fewer frames (plus the first) and 8x smaller frames."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "width": ("INT", {"default": 848, "min": 16, "max": MAX_RESOLUTION, "step": 16}),
            "height": ("INT", {"default": 480, "min": 16, "max": MAX_RESOLUTION, "step": 16}),
            "length": ("INT", {"default": 25, "min": 1, "max": MAX_RESOLUTION, "step": 4}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
        }}

    def generate(self, width: int, height: int, length: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        import torch

        frames = (length - 1) // 4 + 1
        latent = torch.zeros([batch_size, 16, frames, height // 8, width // 8])
        return ({"samples": latent},)


class ModelSamplingSD3:
    DISPLAY_NAME = "ModelSamplingSD3"
    CATEGORY = "advanced/model"
    DESCRIPTION = ("Samples the model as a flow-matching model with shifted sigmas: a higher shift spends more of "
                   "the steps at high noise (Wan uses 8).")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": ("MODEL",),
            "shift": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 100.0, "step": 0.01}),
        }}

    def patch(self, model: Any, shift: float) -> tuple[Any]:
        from .wan_sampling import FlowSampling

        if not hasattr(model, "add_object_patch"):
            raise ValueError(f"ModelSamplingSD3: this MODEL ({type(model).__name__}) cannot take another model "
                             f"sampling")
        if shift <= 0:
            raise ValueError(f"ModelSamplingSD3: shift must be above 0, got {shift}")
        patched = model.clone()
        patched.add_object_patch("model_sampling", FlowSampling(shift=shift, multiplier=1000.0))
        return (patched,)


NODES = {cls.__name__: cls for cls in (UNETLoader, EmptyHunyuanLatentVideo, ModelSamplingSD3)}


# -- what the plugin entry point gathers ----------------------------------------------------------------------------


def model_formats() -> list:
    from .wan_model import wan_formats
    from .wan_text import umt5_formats

    return wan_formats() + umt5_formats()


def _load_diffusion_model(path: Path, weight_dtype: str = "default", **_: Any) -> Any:
    from .wan_loaders import load_diffusion_model

    return load_diffusion_model(path, weight_dtype)


def _load_text_encoder(path: Path, device: str | None = None, **_: Any) -> Any:
    from .wan_loaders import load_text_encoder

    return load_text_encoder(path, device)


def _load_vae(path: Path, **_: Any) -> Any:
    from .wan_vae import load_wan_vae

    return load_wan_vae(path)


def model_loaders() -> dict[tuple[str, str], Any]:
    return {("diffusion_models", "wan21-t2v"): _load_diffusion_model,
            ("diffusion_models", "wan21-t2v-checkpoint"): _load_diffusion_model,
            ("text_encoders", "wan"): _load_text_encoder,
            ("vae", "wan21_vae"): _load_vae}


def memory_estimate(model: Any, input_shape: tuple[int, ...] | None, dtype: Any) -> int | None:
    if type(getattr(model, "module", None)).__name__ != "WanModel":
        return None  # not ours: nothing to import
    from .wan_loaders import memory_estimate as estimate

    return estimate(model, input_shape, dtype)


def _writer(name: str):
    def write(path: Path, seed: int) -> None:
        from . import wan_tiny

        getattr(wan_tiny, name)(path, seed)

    return write


def _write_tiny_lora(path: Path, seed: int) -> None:
    """A rank-4 LoRA in ComfyUI's naming on every attention and FFN matrix of the tiny Wan model (LoraLoaderModelOnly)."""
    import torch
    from safetensors.torch import save_file

    from .wan_model import WanModel
    from .wan_tiny import TINY_DIT

    with torch.device("meta"):
        shapes = {k[:-7]: v.shape for k, v in WanModel(TINY_DIT).state_dict().items()
                  if k.endswith(".weight") and v.ndim == 2 and k.startswith("blocks.")}
    generator = torch.Generator().manual_seed(seed)
    rank, tensors = 4, {}
    for module, (out, inner) in shapes.items():
        name = f"diffusion_model.{module}"
        tensors[f"{name}.lora_A.weight"] = torch.randn(rank, inner, generator=generator) / inner ** 0.5
        tensors[f"{name}.lora_B.weight"] = torch.randn(out, rank, generator=generator) * 0.1
        tensors[f"{name}.alpha"] = torch.tensor(float(rank))
    save_file(tensors, str(path), metadata={"ss_base_model_version": "wan2.1_t2v_tiny"})


def _no_single_file(path: Path, seed: int) -> None:
    raise ValueError("the tiny Wan model is several files: write it with --out DIR or make-tiny all")


TINY_MODELS: dict = {
    "wan-dit": TinyModel("diffusion_models", TINY_DIFFUSION_MODEL, _writer("write_tiny_wan_diffusion_model"),
                         "Wan 2.1 T2V diffusion transformer (UNETLoader), width 32, ~60 KB"),
    "wan-umt5": TinyModel("text_encoders", TINY_TEXT_ENCODER, _writer("write_tiny_umt5"),
                          "UMT5 text encoder (CLIPLoader type wan) + tiny-umt5.tokenizer.json beside it"),
    "lora-wan": TinyModel("loras", "tiny-lora-wan.safetensors", _write_tiny_lora,
                          "LoRA for the tiny Wan model (LoraLoaderModelOnly), ComfyUI's diffusion_model.* naming"),
    "wan": TinyModel("diffusion_models", "", _no_single_file,
                     "Wan 2.1 text-to-video: diffusion model, UMT5 + tokenizer, VAE (--out DIR)",
                     parts=("wan-dit", "wan-umt5", "wan-vae")),
}
