"""Z-Image Turbo: its DiT, the Qwen3-4B text encoder (CLIPLoader type lumina2), tiny models and nodes.

The frontend's default workflow runs on the core's and other plugins' nodes; this part teaches them Z-Image:

    UNETLoader (unet_name, weight_dtype)         -> MODEL   z_image_turbo_bf16.safetensors (ComfyUI's layout)
    CLIPLoader (clip_name, type "lumina2")       -> CLIP    qwen_3_4b.safetensors + its tokenizer.json beside it
    VAELoader (vae_name)                          -> VAE     ae.safetensors (the DiT plugin's ae part)
    ModelSamplingAuraFlow (model, shift)          -> MODEL   the samplers plugin's node (the workflow uses shift 3)
    EmptySD3LatentImage (width, height, batch)    -> LATENT  the SD plugin's node: 16 channels, 8x smaller

The loader nodes learn Z-Image through ``register_model_loaders`` (see :func:`model_loaders`). Imported when
plugins load: torch is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.model_folders import TinyModel

NODES: dict[str, Any] = {}

TINY_DIFFUSION_MODEL = "tiny-zimage.safetensors"
TINY_TEXT_ENCODER = "tiny-qwen3.safetensors"


def model_formats() -> list:
    from .qwen3_text import qwen3_formats
    from .zimage_model import zimage_formats

    return zimage_formats() + qwen3_formats()


def _load_diffusion_model(path: Path, weight_dtype: str = "default", **_: Any) -> Any:
    from .zimage_loaders import load_diffusion_model

    return load_diffusion_model(path, weight_dtype)


def _load_text_encoder(path: Path, device: str | None = None, **_: Any) -> Any:
    from .zimage_loaders import load_text_encoder

    return load_text_encoder(path, device)


def model_loaders() -> dict[tuple[str, str], Any]:
    # CLIPLoader's "lumina2" type is ComfyUI's for both Lumina 2 (Gemma) and Z-Image (Qwen3-4B); Hearth has only
    # the latter, so the type loads Qwen3 files and a detected Qwen3 file loads the same way.
    return {("diffusion_models", "z-image"): _load_diffusion_model,
            ("diffusion_models", "z-image-checkpoint"): _load_diffusion_model,
            ("diffusion_models", "z-image-diffusers"): _load_diffusion_model,
            ("text_encoders", "lumina2"): _load_text_encoder,
            ("text_encoders", "qwen3"): _load_text_encoder}


def memory_estimate(model: Any, input_shape: tuple[int, ...] | None, dtype: Any) -> int | None:
    if type(getattr(model, "module", None)).__name__ != "ZImageModel":
        return None  # not ours: nothing to import
    from .zimage_loaders import memory_estimate as estimate

    return estimate(model, input_shape, dtype)


def _writer(name: str):
    def write(path: Path, seed: int) -> None:
        from . import zimage_tiny

        getattr(zimage_tiny, name)(path, seed)

    return write


def _no_single_file(path: Path, seed: int) -> None:
    raise ValueError("the tiny Z-Image model is several files: write it with --out DIR or make-tiny all")


TINY_MODELS: dict[str, Any] = {
    "zimage-dit": TinyModel("diffusion_models", TINY_DIFFUSION_MODEL, _writer("write_tiny_zimage"),
                            "Z-Image DiT in z_image_turbo's layout (UNETLoader), width 64, ~2.4 MB"),
    "zimage-qwen3": TinyModel("text_encoders", TINY_TEXT_ENCODER, _writer("write_tiny_qwen3"),
                              "Qwen3 text encoder (CLIPLoader type lumina2) + tiny-qwen3.tokenizer.json beside it"),
    "z-image": TinyModel("diffusion_models", "", _no_single_file,
                         "Z-Image Turbo: DiT, Qwen3 encoder + tokenizer, the 16-channel ae (--out DIR)",
                         parts=("zimage-dit", "zimage-qwen3", "flux-vae")),
}
