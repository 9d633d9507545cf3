"""Checkpoint formats of the SD families as sentinel-key tables, for ``register_model_formats`` (no torch here).

Sentinels are keys only (shape None): the same tables must recognise a full checkpoint and a ``make-tiny`` one,
and the layout (which prefixes exist) is what tells the families apart, not the widths. SD2's v-prediction and
eps models share one layout exactly; keys cannot tell them apart, so the ``sd2`` format says v (the 768-v models
most people use) in ``extra["prediction"]``, and :func:`resolve_sd2_prediction` (the plugin's
``resolve_model_format``) corrects it from the file's ``modelspec.prediction_type`` metadata when present. The
loader takes the answer from, in order: the caller's ``prediction=`` option, that metadata, this default.
ComfyUI instead runs the UNet once on a probe input; we do not guess from outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from hearth.core.models.formats import ModelFormat

PREDICTION_METADATA_KEY = "modelspec.prediction_type"  # Stability's ModelSpec: "epsilon" or "v"
_PREDICTION_NAMES = {"epsilon": "eps", "eps": "eps", "v": "v", "v_prediction": "v", "v-prediction": "v"}

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_CLIP_PREFIX = "cond_stage_model.transformer."
SD2_CLIP_PREFIX = "cond_stage_model.model."
SDXL_CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
SDXL_CLIP_G_PREFIX = "conditioner.embedders.1.model."
REFINER_CLIP_G_PREFIX = "conditioner.embedders.0.model."
UNCLIP_VISION_PREFIX = "embedder.model.visual."  # an SD2.1-unclip checkpoint's CLIP vision tower (OpenCLIP layout)

_UNET_IN = UNET_PREFIX + "input_blocks.0.0.weight"
_UNET_ADM = UNET_PREFIX + "label_emb.0.0.weight"
_VAE = VAE_PREFIX + "decoder.conv_in.weight"
_HF_TOKENS = "text_model.embeddings.token_embedding.weight"
_OPEN_CLIP_TOKENS = "token_embedding.weight"


def sd_formats() -> list[ModelFormat]:
    """The checkpoint formats this plugin loads; ``extra["family"]`` names the :mod:`hearth_sd.families` entry."""
    return [
        ModelFormat(
            "sd1",
            sentinels={_UNET_IN: None, SD1_CLIP_PREFIX + _HF_TOKENS: None, _VAE: None},
            description="Stable Diffusion 1.x checkpoint (UNet, CLIP-L, VAE)",
            prefixes=(UNET_PREFIX, VAE_PREFIX, SD1_CLIP_PREFIX),
            extra={"family": "sd1", "prediction": "eps"},
        ),
        ModelFormat(
            "sd2",
            sentinels={_UNET_IN: None, SD2_CLIP_PREFIX + _OPEN_CLIP_TOKENS: None, _VAE: None},
            description="Stable Diffusion 2.x checkpoint (UNet, OpenCLIP ViT-H, VAE); v or eps prediction",
            prefixes=(UNET_PREFIX, VAE_PREFIX, SD2_CLIP_PREFIX),
            extra={"family": "sd2", "prediction": "v", "predictions": ("v", "eps")},
        ),
        ModelFormat(
            "sdxl",
            sentinels={
                _UNET_ADM: None,
                SDXL_CLIP_L_PREFIX + _HF_TOKENS: None,
                SDXL_CLIP_G_PREFIX + _OPEN_CLIP_TOKENS: None,
                _VAE: None,
            },
            description="Stable Diffusion XL base checkpoint (UNet, CLIP-L + OpenCLIP ViT-bigG, VAE)",
            prefixes=(UNET_PREFIX, VAE_PREFIX, SDXL_CLIP_L_PREFIX, SDXL_CLIP_G_PREFIX),
            extra={"family": "sdxl", "prediction": "eps"},
        ),
        ModelFormat(
            "sdxl_refiner",
            sentinels={_UNET_ADM: None, REFINER_CLIP_G_PREFIX + _OPEN_CLIP_TOKENS: None, _VAE: None},
            description="Stable Diffusion XL refiner checkpoint (UNet, OpenCLIP ViT-bigG, VAE)",
            prefixes=(UNET_PREFIX, VAE_PREFIX, REFINER_CLIP_G_PREFIX),
            extra={"family": "sdxl_refiner", "prediction": "eps"},
        ),
        ModelFormat(
            "sd2_unclip",
            sentinels={_UNET_IN: None, _UNET_ADM: None, SD2_CLIP_PREFIX + _OPEN_CLIP_TOKENS: None, _VAE: None},
            description="Stable Diffusion 2.1 unCLIP checkpoint (UNet with an image-embedding ADM input, OpenCLIP "
                        "ViT-H, VAE, and its CLIP vision tower under embedder.model.visual.)",
            prefixes=(UNET_PREFIX, VAE_PREFIX, SD2_CLIP_PREFIX, UNCLIP_VISION_PREFIX),
            extra={"family": "sd2_unclip", "prediction": "v"},
        ),
        ModelFormat(
            "sd_vae",
            sentinels={"encoder.conv_in.weight": None, "decoder.conv_in.weight": None, "quant_conv.weight": None},
            description="Stable Diffusion KL autoencoder (a standalone VAE file, as VAELoader reads)",
            prefixes=("",),
            extra={"part": "vae"},
        ),
    ]


def prediction_from_metadata(metadata: Mapping[str, str]) -> str | None:
    """``"eps"`` / ``"v"`` from a file's ModelSpec metadata, None when it does not say (or says something else)."""
    return _PREDICTION_NAMES.get(str(metadata.get(PREDICTION_METADATA_KEY, "")).strip().lower())


def resolve_sd2_prediction(
    shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str], formats: Iterable[ModelFormat]
) -> ModelFormat | None:
    """The ``sd2`` format with ``extra["prediction"]`` taken from the metadata, for an SD2 file that declares it."""
    prediction = prediction_from_metadata(metadata)
    sd2 = next((f for f in formats if f.name == "sd2" and f.extra.get("family") == "sd2"), None)
    if prediction is None or sd2 is None or sd2.score(shapes) < 1.0:
        return None
    return replace(sd2, extra={**sd2.extra, "prediction": prediction})
