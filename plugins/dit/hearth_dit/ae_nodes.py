"""The 16-channel autoencoder Flux.1 and Z-Image share, and the T5-XXL and CLIP-L text encoders of Flux.

    VAELoader (vae_name: ae.safetensors)                      -> VAE   the core's node; this part adds the Flux ae
    DualCLIPLoader (t5xxl + clip_l in either order, "flux")   -> CLIP  the SD plugin's node; this part adds "flux"

The loader nodes learn these files through ``register_model_loaders`` (see :func:`model_loaders`); DualCLIPLoader
looks up kind ``dual_text_encoders`` by its ``type``. Imported when plugins load: torch is imported inside the
functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.model_folders import TinyModel

TINY_VAE = "tiny-flux-ae.safetensors"
TINY_T5 = "tiny-t5xxl.safetensors"
TINY_CHECKPOINT = "tiny-flux-schnell-aio.safetensors"
TINY_CLIP_L = "tiny-flux-clip-l.safetensors"  # SD already writes a tiny-clip-l.safetensors

NODES: dict[str, Any] = {}


def model_formats() -> list:
    from hearth.core.models import ModelFormat

    from .clip_model import clip_formats
    from .t5_model import t5_formats

    # Two sentinels on purpose: SD's standalone VAE format has these two and quant_conv, so an SD VAE (three
    # matches) stays SD's, and Flux's ae (no quant_conv) is only this one. The loader checks the 16 channels.
    ae = ModelFormat("flux_ae", {"encoder.conv_in.weight": None, "decoder.conv_in.weight": None},
                     "Flux.1 / Z-Image 16-channel autoencoder (ae.safetensors, VAELoader)", prefixes=("",),
                     extra={"part": "vae", "family": "flux"})
    return [ae, *t5_formats(), *clip_formats()]


def _load_vae(path: Path, **_: Any) -> Any:
    from .ae_value import load_flux_vae

    return load_flux_vae(path)


def _load_flux_text_encoders(paths: list[Path], device: str | None = None, **_: Any) -> Any:
    from .clip_flux import load_flux_text_encoders

    return load_flux_text_encoders(paths, device)


def model_loaders() -> dict[tuple[str, str], Any]:
    return {("vae", "flux_ae"): _load_vae, ("dual_text_encoders", "flux"): _load_flux_text_encoders}


def memory_estimate(model: Any, input_shape: tuple[int, ...] | None, dtype: Any) -> int | None:
    return None  # the VAE and text encoders give their working memory to their PatchedModels directly


def _writer(name: str):
    def write(path: Path, seed: int) -> None:
        from . import ae_tiny

        getattr(ae_tiny, name)(path, seed)

    return write


TINY_MODELS: dict = {
    "flux-vae": TinyModel("vae", TINY_VAE, _writer("write_tiny_flux_vae"),
                          "Flux.1 / Z-Image 16-channel autoencoder (VAELoader), published ae layout, ~1 MB"),
    "flux-t5xxl": TinyModel("text_encoders", TINY_T5, _writer("write_tiny_t5xxl"),
                            "T5-XXL v1.1 encoder (DualCLIPLoader flux) + tiny-t5xxl.tokenizer.json beside it"),
    "flux-checkpoint": TinyModel("checkpoints", TINY_CHECKPOINT, _writer("write_tiny_flux_checkpoint"),
                                 "all-in-one Flux.1 schnell checkpoint (CheckpointLoaderSimple: transformer, T5 + "
                                 "CLIP-L, ae) + its T5 tokenizer.json beside it"),
    "flux-clip-l": TinyModel("text_encoders", TINY_CLIP_L, _writer("write_tiny_clip_l"),
                             "CLIP-L text encoder (DualCLIPLoader flux), 32 wide; merges from open-clip-torch"),
}
