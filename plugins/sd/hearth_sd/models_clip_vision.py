"""CLIP vision files as a model kind: their formats (sentinel keys), the loader for models/clip_vision, tiny files.

Two layouts, as ComfyUI's ``comfy.clip_vision.load`` reads them: Hugging Face's ``vision_model.*`` (the
``clip_vision_g/h/vit-l.safetensors`` files of ComfyUI's model lists) and OpenCLIP's ``visual.*``. Which encoder a
file holds (ViT-L/14, ViT-H/14, ViT-bigG/14) comes from its shapes when it loads (:mod:`hearth_sd.clip_vision`).
SD2.1-unclip checkpoints (which carry a CLIP vision tower) load through the SD checkpoint loader; their format is
in :mod:`hearth_sd.formats`, their loaders and tiny file here. Imported when plugins load: no torch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.model_folders import TinyModel
from hearth.core.models.formats import ModelFormat

FOLDER = "clip_vision"

MODEL_FORMATS = [
    ModelFormat("clip_vision", {"vision_model.embeddings.patch_embedding.weight": None,
                                "vision_model.embeddings.position_embedding.weight": None,
                                "vision_model.pre_layrnorm.weight": None},
                "CLIP vision encoder, Hugging Face layout (CLIPVisionLoader: ViT-L/14, ViT-H/14, ViT-bigG/14)",
                prefixes=("vision_model.",), extra={"part": "clip_vision"}),
    ModelFormat("clip_vision_open_clip", {"visual.conv1.weight": None, "visual.positional_embedding": None,
                                          "visual.transformer.resblocks.0.attn.in_proj_weight": None},
                "CLIP vision encoder, OpenCLIP layout (visual.*)", prefixes=("visual.",),
                extra={"part": "clip_vision"}),
]


def load_clip_vision_file(path: Path, **options: Any) -> Any:
    from .clip_vision_loader import load

    return load(path, **options)


def load_unclip_checkpoint_file(path: Path, embeddings: Any = None, prediction: str | None = None, **_: Any) -> Any:
    """``(MODEL, CLIP, VAE)`` of an SD2.1-unclip checkpoint (CheckpointLoaderSimple; unCLIPCheckpointLoader adds
    its CLIP vision tower). Its format, ``sd2_unclip``, is one of :func:`hearth_sd.formats.sd_formats`."""
    from hearth.core.model_folders import model_folders

    from .loaders import checkpoint

    if embeddings is None:
        embeddings = model_folders().folders("embeddings")
    return checkpoint(path, embeddings=embeddings, prediction=prediction)


def load_unclip_part(path: Path, weight_dtype: str = "default", device: str | None = None, **_: Any) -> Any:
    from .loaders import unet

    return unet(path, weight_dtype=weight_dtype, device=device)


def load_unclip_vae(path: Path, **_: Any) -> Any:
    from .loaders import vae

    return vae(path)


MODEL_LOADERS = {(FOLDER, fmt.name): load_clip_vision_file for fmt in MODEL_FORMATS}
MODEL_LOADERS.update({("checkpoints", "sd2_unclip"): load_unclip_checkpoint_file,
                      ("diffusion_models", "sd2_unclip"): load_unclip_part,
                      ("vae", "sd2_unclip"): load_unclip_vae})


def write_tiny_clip_vision(path: Path, seed: int = 0) -> None:
    """A tiny random CLIP vision encoder (Hugging Face layout, 32 px input, 8 px patches, 16-wide embeddings)."""
    import json

    import torch

    from hearth.core.models import write_safetensors

    from .clip_vision import CONFIG_METADATA_KEY, TINY, CLIPVisionEncoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 404)
        module = CLIPVisionEncoder(TINY)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    config = {"name": "tiny CLIP vision", "config": {"heads": TINY.heads, "activation": TINY.activation}}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(tensors, path, {CONFIG_METADATA_KEY: json.dumps(config),
                                      "hearth.sd.tiny": "random weights, for tests and demos only"})


def write_tiny_unclip(path: Path, seed: int = 0) -> None:
    from .tiny import make_tiny_checkpoint

    make_tiny_checkpoint("sd2_unclip", path, seed)


TINY_MODELS = {
    "clip-vision-tiny": TinyModel(FOLDER, "tiny-clip-vision.safetensors", write_tiny_clip_vision,
                                  "CLIP vision encoder, 32 px (CLIPVisionLoader)"),
    "sd2-unclip": TinyModel("checkpoints", "tiny-sd2-unclip.safetensors", write_tiny_unclip,
                            "SD2.1-unclip checkpoint with its CLIP vision tower (unCLIPCheckpointLoader)"),
}
