"""Wan 2.1 text-to-video nodes with ComfyUI's names and inputs, as its Wan workflows use them.

    UNETLoader (unet_name, weight_dtype)                 -> MODEL     the core's node; this part adds Wan's files
    CLIPLoader (clip_name, type "wan")                   -> CLIP      the core's node; this part adds "wan"
    VAELoader (vae_name)                                 -> VAE       the core's node; this part adds the Wan VAE
    EmptyHunyuanLatentVideo (width, height, length, batch_size) -> LATENT [B, 16, (length-1)//4 + 1, H/8, W/8]
    ModelSamplingSD3 (model, shift)                      -> MODEL     flow-matching sampling with that shift

The core's loader nodes learn Wan through ``register_model_loaders`` (see :func:`model_loaders`). Imported when
plugins load: torch is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.images import MAX_RESOLUTION
from hearth.core.model_folders import TinyModel

TINY_DIFFUSION_MODEL = "tiny-wan.safetensors"
TINY_TEXT_ENCODER = "tiny-umt5.safetensors"


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


NODES = {cls.__name__: cls for cls in (EmptyHunyuanLatentVideo, ModelSamplingSD3)}


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
