"""Flux.1 (dev, schnell, Kontext): its transformer's files, tiny models and its conditioning nodes.

    UNETLoader (unet_name, weight_dtype)                        -> MODEL  the core's node; this part adds Flux's files
    CheckpointLoaderSimple (ckpt_name)                          -> MODEL, CLIP, VAE  of an all-in-one Flux checkpoint
    CLIPTextEncodeFlux (clip, clip_l, t5xxl, guidance)          -> CONDITIONING  ComfyUI's node of that name
    FluxDisableGuidance (conditioning)                          -> CONDITIONING  guidance None: no guidance embed

The rest of a Flux graph is other plugins' nodes, which this MODEL serves: DualCLIPLoader type flux and VAELoader
(ae.safetensors) from this plugin's ae part, FluxGuidance (hearth-sd), ModelSamplingFlux, KSampler and the custom
sampling nodes (hearth-samplers), EmptySD3LatentImage, ReferenceLatent and FluxKontextMultiReferenceLatentMethod
(hearth-sd; Kontext's reference images, which the MODEL reads).

The core's loader nodes learn Flux through ``register_model_loaders`` (see :func:`model_loaders`). Imported when
plugins load: torch is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.model_folders import TinyModel

FORMAT_NAME = "flux1"
TINY_DIFFUSION_MODEL = "tiny-flux.safetensors"


class CLIPTextEncodeFlux:
    DISPLAY_NAME = "CLIPTextEncodeFlux"
    CATEGORY = "advanced/conditioning/flux"
    DESCRIPTION = ("Encodes a prompt for Flux: clip_l's text through CLIP-L (the pooled vector), t5xxl's through "
                   "T5-XXL (the token states), and the distilled guidance scale.")
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "clip": ("CLIP",),
            "clip_l": ("STRING", {"multiline": True, "dynamicPrompts": True}),
            "t5xxl": ("STRING", {"multiline": True, "dynamicPrompts": True}),
            "guidance": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 100.0, "step": 0.1}),
        }}

    def encode(self, clip: Any, clip_l: str, t5xxl: str, guidance: float) -> tuple[list[list[Any]]]:
        if clip is None:
            raise ValueError("CLIPTextEncodeFlux: no CLIP connected; load clip_l and t5xxl with DualCLIPLoader "
                             "type flux")
        tokens = clip.tokenize(clip_l)
        if not isinstance(tokens, dict) or "t5xxl" not in tokens:
            raise ValueError("CLIPTextEncodeFlux: this CLIP has no T5-XXL encoder; load clip_l and t5xxl with "
                             "DualCLIPLoader type flux")
        tokens["t5xxl"] = clip.tokenize(t5xxl)["t5xxl"]
        return (clip.encode_from_tokens_scheduled(tokens, add_dict={"guidance": guidance}),)


class FluxDisableGuidance:
    DISPLAY_NAME = "FluxDisableGuidance"
    CATEGORY = "advanced/conditioning/flux"
    DESCRIPTION = ("Switches off the distilled guidance embedding of Flux-like models: the conditioning's guidance "
                   "becomes None.")
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning": ("CONDITIONING",)}}

    def append(self, conditioning: list[list[Any]]) -> tuple[list[list[Any]]]:
        # Each entry gets a copy of its options with guidance None: the MODEL then adds no guidance embedding.
        return ([[cond, {**options, "guidance": None}] for cond, options in conditioning],)


NODES = {cls.__name__: cls for cls in (CLIPTextEncodeFlux, FluxDisableGuidance)}


# -- what the plugin entry point gathers ------------------------------------------------------------------------------

# Sentinel keys of the published layout (bare / under model.diffusion_model.) and of diffusers' layout.
_PUBLISHED = ("img_in.weight", "txt_in.weight", "time_in.in_layer.weight", "vector_in.in_layer.weight",
              "double_blocks.0.img_attn.qkv.weight", "double_blocks.0.img_attn.norm.query_norm.scale",
              "final_layer.linear.weight")


def model_formats() -> list:
    from hearth.core.models import ModelFormat

    from .flux_convert import DIFFUSERS_SENTINELS

    formats = [ModelFormat(FORMAT_NAME if not prefix else f"{FORMAT_NAME}-checkpoint",
                           {prefix + key: None for key in _PUBLISHED},
                           "Flux.1 transformer (dev or schnell; bf16, fp8 or ComfyUI scaled fp8)", prefixes=(prefix,),
                           extra={"family": "flux"})
               for prefix in ("", "model.diffusion_model.")]
    formats.append(ModelFormat(f"{FORMAT_NAME}-diffusers", dict.fromkeys(DIFFUSERS_SENTINELS),
                               "Flux.1 transformer in diffusers' layout (FluxTransformer2DModel)", prefixes=("",),
                               extra={"family": "flux"}))
    return formats


def _load_diffusion_model(path: Path, weight_dtype: str = "default", **_: Any) -> Any:
    from .flux_loaders import load_diffusion_model

    return load_diffusion_model(path, weight_dtype)


def _load_checkpoint(path: Path, **_: Any) -> tuple[Any, Any, Any]:
    """CheckpointLoaderSimple on a Flux checkpoint (the transformer under ``model.diffusion_model.``): the MODEL,
    and the CLIP and VAE the ae part reads from the same file (Comfy-Org's all-in-one files have
    ``text_encoders.clip_l.*``, ``text_encoders.t5xxl.*`` and ``vae.*``); None for a part the file lacks, as ComfyUI
    gives for a model-only checkpoint."""
    import logging

    from .ae_value import load_flux_checkpoint_vae
    from .clip_flux import load_flux_checkpoint_encoders
    from .flux_loaders import load_diffusion_model

    model = load_diffusion_model(path)
    clip, vae = load_flux_checkpoint_encoders(path), load_flux_checkpoint_vae(path)
    for part, what, node in ((clip, "CLIP", "DualCLIPLoader"), (vae, "VAE", "VAELoader")):
        if part is None:
            logging.getLogger("hearth.dit").warning("%s: this Flux checkpoint has no %s; load one with %s",
                                                    path.name, what, node)
    return model, clip, vae


def model_loaders() -> dict[tuple[str, str], Any]:
    loaders: dict[tuple[str, str], Any] = {("diffusion_models", name): _load_diffusion_model
                                           for name in (FORMAT_NAME, f"{FORMAT_NAME}-checkpoint",
                                                        f"{FORMAT_NAME}-diffusers")}
    loaders[("checkpoints", f"{FORMAT_NAME}-checkpoint")] = _load_checkpoint
    return loaders


def memory_estimate(model: Any, input_shape: tuple[int, ...] | None, dtype: Any) -> int | None:
    if type(getattr(model, "module", None)).__name__ != "FluxTransformer":
        return None  # not ours: nothing to import
    from .flux_loaders import memory_estimate as estimate

    return estimate(model, input_shape, dtype)


def _writer(name: str):
    def write(path: Path, seed: int) -> None:
        from . import flux_tiny

        getattr(flux_tiny, name)(path, seed)

    return write


def _no_single_file(path: Path, seed: int) -> None:
    raise ValueError("the tiny Flux model is several files: write it with --out DIR or make-tiny all")


TINY_MODELS: dict = {
    "flux-dit": TinyModel("diffusion_models", TINY_DIFFUSION_MODEL, _writer("write_tiny_flux"),
                          "Flux.1 dev transformer (UNETLoader), published layout, width 32, ~550 KB"),
    "flux-dit-schnell": TinyModel("diffusion_models", "tiny-flux-schnell.safetensors",
                                  _writer("write_tiny_flux_schnell"),
                                  "Flux.1 schnell transformer (no guidance embedding), published layout"),
    "flux-dit-diffusers": TinyModel("diffusion_models", "tiny-flux-diffusers.safetensors",
                                    _writer("write_tiny_flux_diffusers"),
                                    "the tiny Flux.1 dev transformer in diffusers' FluxTransformer2DModel layout"),
    "flux-dit-fp8": TinyModel("diffusion_models", "tiny-flux-fp8-scaled.safetensors",
                              _writer("write_tiny_flux_scaled_fp8"),
                              "the tiny Flux.1 dev transformer as a ComfyUI scaled-fp8 file"),
    "lora-flux": TinyModel("loras", "tiny-lora-flux.safetensors", _writer("write_tiny_flux_lora"),
                           "LoRA for the tiny Flux model (LoraLoaderModelOnly), kohya's lora_unet_* naming"),
    "flux": TinyModel("diffusion_models", "", _no_single_file,
                      "Flux.1 dev: transformer, T5-XXL + tokenizer, CLIP-L, 16-channel VAE (--out DIR)",
                      parts=("flux-dit", "flux-t5xxl", "flux-clip-l", "flux-vae")),
}
