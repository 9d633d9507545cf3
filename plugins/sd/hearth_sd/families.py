"""The Stable Diffusion families as data: where each part lives in a checkpoint, full-size and tiny configs.

A :class:`Family` names the checkpoint prefixes of its UNet, VAE and text encoders, their real configs (used to
check and fill what key shapes cannot tell, such as attention heads) and tiny configs (for ``make-tiny`` and
tests), its prediction type and latent scale. Nothing here loads weights.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .clip_text import TextEncoderConfig
from .formats import (
    REFINER_CLIP_G_PREFIX,
    SD1_CLIP_PREFIX,
    SD2_CLIP_PREFIX,
    SDXL_CLIP_G_PREFIX,
    SDXL_CLIP_L_PREFIX,
)
from .unet import UNetConfig
from .vae import VAEConfig

START_TOKEN = 49406
END_TOKEN = 49407


@dataclass(frozen=True)
class TextEncoderSpec:
    """One text encoder of a family.

    :param name: ``"l"`` (OpenAI CLIP-L), ``"h"`` (OpenCLIP ViT-H) or ``"g"`` (OpenCLIP ViT-bigG); also the key
        of its vectors in an SDXL textual-inversion file (``clip_l`` / ``clip_g``).
    :param layout: ``"hf"`` (``transformer.text_model.*``) or ``"open_clip"`` (``model.*``).
    :param default_layer: the hidden layer used when no clip skip is set: None for the final-normed last layer,
        -2 for the penultimate layer.
    :param norm_hidden: whether a chosen intermediate layer goes through the final layer norm (SD1 only).
    :param pad_token: the id that fills a chunk after its end token (CLIP-L pads with the end token,
        OpenCLIP with 0).
    """

    name: str
    prefix: str
    layout: str
    config: TextEncoderConfig
    tiny: TextEncoderConfig
    default_layer: int | None
    norm_hidden: bool
    pad_token: int


@dataclass(frozen=True)
class Family:
    """A model family. ``adm`` is None, ``"sdxl"`` (size + crop + target size), ``"sdxl_refiner"`` (size +
    crop + aesthetic score) or ``"unclip"`` (noise-augmented CLIP image embeddings): which vector the UNet's
    ``label_emb`` takes."""

    name: str
    description: str
    unet: UNetConfig
    unet_tiny: UNetConfig
    text_encoders: tuple[TextEncoderSpec, ...]
    prediction: str = "eps"
    latent_scale: float = 0.18215
    adm: str | None = None
    vae: VAEConfig = VAEConfig()
    vae_tiny: VAEConfig = VAEConfig(ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1)


# Real CLIP/OpenCLIP towers use 64-wide heads; the tiny ones keep 8-wide heads on a 32-wide model.
CLIP_L = TextEncoderConfig(width=768, layers=12, heads=12, intermediate=3072, activation="quick_gelu")
CLIP_L_TINY = TextEncoderConfig(width=32, layers=2, heads=4, intermediate=128, activation="quick_gelu")
OPEN_CLIP_H = TextEncoderConfig(
    width=1024, layers=24, heads=16, intermediate=4096, activation="gelu", projection_dim=1024
)
OPEN_CLIP_G = TextEncoderConfig(
    width=1280, layers=32, heads=20, intermediate=5120, activation="gelu", projection_dim=1280
)
OPEN_CLIP_TINY = TextEncoderConfig(
    width=32, layers=2, heads=4, intermediate=128, activation="gelu", projection_dim=32
)

# The size and crop values each go through a 256-wide sinusoidal embedding before joining the pooled text.
SDXL_FOURIER_DIM = 256

SD1 = Family(
    name="sd1",
    description="Stable Diffusion 1.x (CLIP-L, eps prediction)",
    unet=UNetConfig(),
    unet_tiny=UNetConfig(
        model_channels=32, channel_mult=(1, 2), transformer_depth=(1, 0), context_dim=32, num_heads=4
    ),
    text_encoders=(
        TextEncoderSpec(
            "l", SD1_CLIP_PREFIX, "hf", CLIP_L, CLIP_L_TINY, None, True, END_TOKEN
        ),
    ),
)

_SD2_UNET = UNetConfig(
    context_dim=1024, num_heads=None, num_head_channels=64, use_linear_in_transformer=True
)
SD2 = Family(
    name="sd2",
    description="Stable Diffusion 2.x (OpenCLIP ViT-H; v prediction for the 768-v models, eps for -base)",
    unet=_SD2_UNET,
    unet_tiny=UNetConfig(
        model_channels=32,
        channel_mult=(1, 2),
        transformer_depth=(1, 0),
        context_dim=32,
        num_heads=None,
        num_head_channels=8,
        use_linear_in_transformer=True,
    ),
    text_encoders=(
        TextEncoderSpec(
            "h", SD2_CLIP_PREFIX, "open_clip", OPEN_CLIP_H, OPEN_CLIP_TINY, -2, False, 0
        ),
    ),
    prediction="v",
)

SDXL = Family(
    name="sdxl",
    description="Stable Diffusion XL base (CLIP-L + OpenCLIP ViT-bigG, size and crop conditioning)",
    unet=UNetConfig(
        channel_mult=(1, 2, 4),
        transformer_depth=(0, 2, 10),
        transformer_depth_middle=10,
        context_dim=2048,
        num_heads=None,
        num_head_channels=64,
        use_linear_in_transformer=True,
        adm_in_channels=1280 + 6 * SDXL_FOURIER_DIM,
    ),
    unet_tiny=UNetConfig(
        model_channels=32,
        channel_mult=(1, 2),
        transformer_depth=(0, 2),
        transformer_depth_middle=2,
        context_dim=64,
        num_heads=None,
        num_head_channels=8,
        use_linear_in_transformer=True,
        adm_in_channels=32 + 6 * SDXL_FOURIER_DIM,
    ),
    text_encoders=(
        TextEncoderSpec(
            "l", SDXL_CLIP_L_PREFIX, "hf", CLIP_L, CLIP_L_TINY, -2, False, END_TOKEN
        ),
        TextEncoderSpec(
            "g", SDXL_CLIP_G_PREFIX, "open_clip", OPEN_CLIP_G, OPEN_CLIP_TINY, -2, False, 0
        ),
    ),
    latent_scale=0.13025,
    adm="sdxl",
)

SDXL_REFINER = Family(
    name="sdxl_refiner",
    description="Stable Diffusion XL refiner (OpenCLIP ViT-bigG only, size, crop and aesthetic score)",
    unet=UNetConfig(
        model_channels=384,
        channel_mult=(1, 2, 4, 4),
        transformer_depth=(0, 4, 4, 0),
        transformer_depth_middle=4,
        context_dim=1280,
        num_heads=None,
        num_head_channels=64,
        use_linear_in_transformer=True,
        adm_in_channels=1280 + 5 * SDXL_FOURIER_DIM,
    ),
    unet_tiny=UNetConfig(
        model_channels=32,
        channel_mult=(1, 2),
        transformer_depth=(0, 2),
        transformer_depth_middle=2,
        context_dim=32,
        num_heads=None,
        num_head_channels=8,
        use_linear_in_transformer=True,
        adm_in_channels=32 + 5 * SDXL_FOURIER_DIM,
    ),
    text_encoders=(
        TextEncoderSpec(
            "g", REFINER_CLIP_G_PREFIX, "open_clip", OPEN_CLIP_G, OPEN_CLIP_TINY, -2, False, 0
        ),
    ),
    latent_scale=0.13025,
    adm="sdxl_refiner",
)

# SD2.1-unclip: the SD2 UNet with an ADM input fed by CLIP image embeddings (noise-augmented, see hearth_sd.unclip)
# instead of text-pooled ones; the -h model takes ViT-H's 1024-wide embeddings (ADM 2048), the -l model ViT-L's
# 768 (ADM 1536). The tiny one takes the tiny CLIP vision encoder's 16.
SD2_UNCLIP = Family(
    name="sd2_unclip",
    description="Stable Diffusion 2.1 unCLIP (OpenCLIP ViT-H text, CLIP image embeddings as ADM, v prediction)",
    unet=replace(_SD2_UNET, adm_in_channels=2048),
    unet_tiny=replace(SD2.unet_tiny, adm_in_channels=2 * 16),
    text_encoders=SD2.text_encoders,
    prediction="v",
    adm="unclip",
)

# The text-to-image families (what generic loops over families test and write tiny files for) ...
FAMILIES: dict[str, Family] = {f.name: f for f in (SD1, SD2, SDXL, SDXL_REFINER)}
# ... and every family a checkpoint may be, the image-conditioned variants included.
ALL_FAMILIES: dict[str, Family] = {**FAMILIES, SD2_UNCLIP.name: SD2_UNCLIP}


def get_family(name: str) -> Family:
    try:
        return ALL_FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(ALL_FAMILIES)}") from None
