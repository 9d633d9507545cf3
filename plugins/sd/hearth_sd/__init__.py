"""Hearth's Stable Diffusion plugin: SD1.x, SD2.x and SDXL models, CLIP text encoding and the VAE.

What nodes call::

    ckpt = load_checkpoint(path, embeddings=[models_dir / "embeddings"])   # CheckpointLoaderSimple
    cond, pooled = ckpt.clip.encode("a (red:1.2) fox")                      # CLIPTextEncode
    clip2 = ckpt.clip.set_last_layer(-2)                                     # CLIPSetLastLayer
    y = sdxl_adm(pooled, width=1024, height=1024)                            # SDXL size/crop conditioning
    denoised = ckpt.model(x, sigma, cond, y)                                 # samplers (k-diffusion model)
    latent = ckpt.vae.encode(image); image = ckpt.vae.decode(latent)         # VAEEncode / VAEDecode

Names import lazily: the plugin's entry point (:mod:`hearth_sd.plugin`) must not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_checkpoint": "hearth_sd.checkpoint",
    "load_vae": "hearth_sd.checkpoint",
    "detect_family": "hearth_sd.checkpoint",
    "Checkpoint": "hearth_sd.checkpoint",
    "CLIP": "hearth_sd.text_encoding",
    "DiffusionModel": "hearth_sd.model",
    "VAE": "hearth_sd.model",
    "ModelSampling": "hearth_sd.sampling",
    "sdxl_adm": "hearth_sd.sdxl_conditioning",
    "sdxl_refiner_adm": "hearth_sd.sdxl_conditioning",
    "parse_prompt_weights": "hearth.core.prompt_weights",
    "CLIPTokenizer": "hearth_sd.tokenizer",
    "EmbeddingLibrary": "hearth_sd.embeddings",
    "FAMILIES": "hearth_sd.families",
    "make_tiny_checkpoint": "hearth_sd.tiny",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hearth_sd' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
