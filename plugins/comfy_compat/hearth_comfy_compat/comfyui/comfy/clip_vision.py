"""ComfyUI's ``comfy.clip_vision``: CLIP vision encoders (the image side of IP-Adapter, unCLIP, Wan i2v...).

Real here: :func:`clip_preprocess` (ComfyUI's exact pixel pipeline: shorter side resized to ``size`` with
antialiased bicubic, centre crop, quantised to 8 bits, normalised by CLIP's mean and std), :class:`Output`,
:func:`convert_to_transformers` (OpenCLIP key layout to Hugging Face's), and which encoder a state dict holds.

:func:`load` and :func:`load_clipvision_from_sd` return the SD plugin's CLIP vision encoder (ViT-L/14, ViT-H/14,
ViT-bigG/14; Hugging Face or OpenCLIP layout), loaded as CLIPVisionLoader loads it: ``encode_image(image,
crop=True)`` gives an :class:`Output`-shaped result, and the weights go through the model manager.

What differs: :class:`ClipVisionModel` reads its JSON config and keeps ComfyUI's constructor, so packs subclass
it, but Hearth builds encoders from their weights, not from a config alone; constructing one fails naming that,
recorded for ``comfy plugins``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from hearth_comfy_compat import hook

__all__ = ["IMAGE_MEAN", "IMAGE_STD", "ClipVisionModel", "Output", "clip_preprocess", "convert_to_transformers",
           "load", "load_clipvision_from_sd"]

IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's training statistics, per RGB channel
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
_FROM_CONFIG = "Hearth builds a CLIP vision encoder from its weights (comfy.clip_vision.load), not from a config alone"


class Output:
    """An encoder's outputs, read as attributes or items: ``last_hidden_state``, ``image_embeds``,
    ``penultimate_hidden_states``..."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, item: Any) -> None:
        setattr(self, key, item)


def clip_preprocess(image: torch.Tensor, size: int = 224, mean: Sequence[float] = IMAGE_MEAN,
                    std: Sequence[float] = IMAGE_STD, crop: bool = True) -> torch.Tensor:
    """IMAGE ``[B, H, W, C]`` in 0..1 -> the encoder's input ``[B, 3, size, size]``.

    An image not already ``size`` square is resized (bicubic, antialiased): with ``crop`` its shorter side to
    ``size`` and the middle cut out, without it squashed to the square. Values are rounded to 1/255 steps, then
    normalised by ``mean`` and ``std``. An alpha channel is dropped.
    """
    if image.shape[-1] > 3:
        image = image[..., :3]
    mean_t = torch.tensor(mean, device=image.device, dtype=image.dtype).view(3, 1, 1)
    std_t = torch.tensor(std, device=image.device, dtype=image.dtype).view(3, 1, 1)
    image = image.movedim(-1, 1)
    height, width = image.shape[2], image.shape[3]
    if (height, width) != (size, size):
        if crop:
            scale = size / min(height, width)
            target = (round(scale * height), round(scale * width))
        else:
            target = (size, size)
        image = torch.nn.functional.interpolate(image, size=target, mode="bicubic", antialias=True)
        top, left = (image.shape[2] - size) // 2, (image.shape[3] - size) // 2
        image = image[:, :, top:top + size, left:left + size]
    image = torch.clip(255.0 * image, 0, 255).round() / 255.0
    return (image - mean_t) / std_t


class ClipVisionModel:
    """A CLIP vision encoder described by a Hugging Face style JSON config (``image_size``, ``image_mean``,
    ``image_std``, layers...). The config is read as ComfyUI reads it; the network is what Hearth lacks."""

    def __init__(self, json_config: str | os.PathLike[str] | Mapping[str, Any]) -> None:
        if isinstance(json_config, Mapping):
            config = dict(json_config)
        else:
            with open(json_config, encoding="utf-8") as f:
                config = json.load(f)
        self.config = config
        self.image_size = config.get("image_size", 224)
        self.image_mean = config.get("image_mean", list(IMAGE_MEAN))
        self.image_std = config.get("image_std", list(IMAGE_STD))
        self.model_type = config.get("model_type", "clip_vision_model")
        raise hook.lacking("comfy.clip_vision.ClipVisionModel",
                           f"{_FROM_CONFIG}: a {self.model_type} of {config.get('num_hidden_layers', '?')} layers")

    def load_sd(self, sd: Mapping[str, Any]) -> Any:
        return self.model.load_state_dict(dict(sd), strict=False)

    def get_sd(self) -> dict[str, Any]:
        return self.model.state_dict()

    def encode_image(self, image: torch.Tensor, crop: bool = True) -> Output:
        raise hook.lacking("comfy.clip_vision.ClipVisionModel.encode_image", _FROM_CONFIG)


_OPEN_CLIP_RENAMES = {"class_embedding": "vision_model.embeddings.class_embedding",
                      "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
                      "positional_embedding": "vision_model.embeddings.position_embedding.weight",
                      "ln_post.bias": "vision_model.post_layernorm.bias",
                      "ln_post.weight": "vision_model.post_layernorm.weight",
                      "ln_pre.bias": "vision_model.pre_layrnorm.bias",
                      "ln_pre.weight": "vision_model.pre_layrnorm.weight"}
_BLOCK_RENAMES = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
                  "attn.out_proj": "self_attn.out_proj"}


def convert_to_transformers(sd: dict[str, Any], prefix: str) -> dict[str, Any]:
    """An OpenCLIP visual tower's keys under ``prefix`` in Hugging Face's layout (q, k, v split out of the fused
    ``in_proj``); a state dict already in that layout just loses ``prefix``."""
    if f"{prefix}transformer.resblocks.0.attn.in_proj_weight" not in sd:
        return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in sd.items()}
    out: dict[str, Any] = {}
    for key, value in sd.items():
        if not key.startswith(prefix):
            out[key] = value
            continue
        rest = key[len(prefix):]
        if rest in _OPEN_CLIP_RENAMES:
            out[_OPEN_CLIP_RENAMES[rest]] = value
        elif rest == "proj":
            out["visual_projection.weight"] = value.transpose(0, 1)
        elif rest.startswith("transformer.resblocks."):
            index, _, inner = rest[len("transformer.resblocks."):].partition(".")
            layer = f"vision_model.encoder.layers.{index}."
            if inner.startswith("attn.in_proj_"):
                kind = inner[len("attn.in_proj_"):]
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                    out[f"{layer}self_attn.{name}.{kind}"] = part
                continue
            for old, new in _BLOCK_RENAMES.items():
                if inner.startswith(old + "."):
                    inner = new + inner[len(old):]
                    break
            out[layer + inner] = value
        else:
            out[key] = value
    return out


def _kind_of(sd: Mapping[str, Any]) -> str | None:
    for layer, kind in ((47, "ViT-bigG"), (31, "ViT-H"), (30, "ViT-H"), (23, "ViT-L"), (22, "ViT-L")):
        if f"vision_model.encoder.layers.{layer}.layer_norm1.weight" in sd:
            return kind
    if "vision_model.encoder.layers.0.layer_norm1.weight" in sd:
        return "a CLIP vision tower"
    if any(k.startswith(("encoder.layer.", "embeddings.")) for k in sd):
        return "a SigLIP or DINOv2 vision tower"
    return None


def load_clipvision_from_sd(sd: Mapping[str, Any], prefix: str = "", convert_keys: bool = False) -> Any:
    """The CLIP vision encoder a state dict holds (an OpenCLIP one under ``prefix`` with ``convert_keys``), or None
    when it holds none, as ComfyUI returns."""
    from hearth_comfy_compat import comfy_sd

    if convert_keys:
        sd = convert_to_transformers(dict(sd), prefix)
    if _kind_of(sd) is None:
        return None
    return comfy_sd._load_tensors("clip_vision", {k: v for k, v in sd.items() if k.startswith(("vision_model.",
                                                                                               "visual_projection."))})


def load(ckpt_path: str) -> Any:
    """ComfyUI's CLIP vision file loader (what CLIPVisionLoader uses): the encoder in ``ckpt_path``."""
    from hearth_comfy_compat import comfy_sd

    return comfy_sd._load("clip_vision", ckpt_path)
