"""CLIP vision encoders (OpenAI ViT-L/14, OpenCLIP ViT-H/14 and ViT-bigG/14) in the Hugging Face layout.

What ComfyUI's ``comfy.clip_vision`` / ``clip_model.CLIPVisionModelProjection`` compute for CLIPVisionEncode,
unCLIP, IP-Adapter and style models: :func:`preprocess` (the shorter side resized to the encoder's size with
antialiased bicubic, a centre crop or a squash, 8-bit rounding, CLIP's mean and std) and
:class:`CLIPVisionEncoder`, whose ``state_dict`` reads ``vision_model.*`` and ``visual_projection.weight`` as
transformers' ``CLIPVisionModelWithProjection`` saves them. OpenCLIP's ``visual.*`` layout (and an unCLIP
checkpoint's ``embedder.model.visual.*``) converts with :func:`convert_open_clip`. The config comes from the
shapes; what shapes cannot say (heads, activation) from the known encoders of the same size, or for the tiny
test files from their ``hearth.clip_vision.config`` metadata.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .clip_text import CLIPLayer, normal_init
from .ops import compute_dtype_of

CONFIG_METADATA_KEY = "hearth.clip_vision.config"
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's training statistics, per RGB channel
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
PATCH_KEY = "vision_model.embeddings.patch_embedding.weight"
POSITIONS_KEY = "vision_model.embeddings.position_embedding.weight"


@dataclass(frozen=True)
class CLIPVisionConfig:
    """Shape of a CLIP vision transformer; ``projection_dim`` None when the file has no visual projection."""

    width: int = 1024
    layers: int = 24
    heads: int = 16
    intermediate: int = 4096
    patch_size: int = 14
    image_size: int = 224
    projection_dim: int | None = 768
    activation: str = "quick_gelu"
    eps: float = 1e-5

    @property
    def positions(self) -> int:
        return (self.image_size // self.patch_size) ** 2 + 1


# The encoders ComfyUI ships configs for, by (width, layers): what the shapes cannot tell (heads, activation).
KNOWN = {
    (1024, 24): ("ViT-L/14", CLIPVisionConfig()),
    (1280, 32): ("ViT-H/14", CLIPVisionConfig(width=1280, layers=32, heads=16, intermediate=5120,
                                              projection_dim=1024, activation="gelu")),
    (1664, 48): ("ViT-bigG/14", CLIPVisionConfig(width=1664, layers=48, heads=16, intermediate=8192,
                                                 projection_dim=1280, activation="gelu")),
}
TINY = CLIPVisionConfig(width=32, layers=2, heads=4, intermediate=64, patch_size=8, image_size=32,
                        projection_dim=16, activation="quick_gelu")


class UnsupportedVisionModelError(ValueError):
    """A file that is a vision model Hearth does not run (SigLIP, DINOv2...) or no CLIP vision encoder at all."""


def _count_layers(keys: Mapping[str, object]) -> int:
    found = [int(m.group(1)) for k in keys if (m := re.match(r"vision_model\.encoder\.layers\.(\d+)\.", k))]
    return max(found) + 1 if found else 0


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str] | None = None,
                       source: str = "state dict") -> tuple[str, CLIPVisionConfig]:
    """``(name, config)`` of the encoder whose Hugging Face keys have ``shapes`` (key -> shape).

    :raises UnsupportedVisionModelError: naming ``source`` when the keys are not a CLIP vision tower or its size is
        none ComfyUI loads (SigLIP's 1152-wide towers among them) and no metadata says how to build it.
    """
    if PATCH_KEY not in shapes or POSITIONS_KEY not in shapes:
        raise UnsupportedVisionModelError(f"{source}: not a CLIP vision encoder (no {PATCH_KEY}); CLIPVisionLoader "
                                          f"loads CLIP ViT-L/14, ViT-H/14 and ViT-bigG/14 image encoders")
    width, _, patch, _ = shapes[PATCH_KEY]
    positions = shapes[POSITIONS_KEY][0]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise UnsupportedVisionModelError(f"{source}: {positions} position embeddings is not a square grid plus "
                                          f"the class token; not a CLIP vision encoder Hearth can run")
    layers = _count_layers(shapes)
    fc1 = shapes.get("vision_model.encoder.layers.0.mlp.fc1.weight")
    projection = shapes.get("visual_projection.weight")
    measured = {"width": width, "layers": layers, "patch_size": patch, "image_size": grid * patch,
                "intermediate": fc1[0] if fc1 else 0, "projection_dim": projection[0] if projection else None}
    told = json.loads((metadata or {}).get(CONFIG_METADATA_KEY, "{}"))
    if told:
        return told.get("name", "CLIP vision"), CLIPVisionConfig(**{**measured, **told.get("config", {})})
    known = KNOWN.get((width, layers))
    if known is None:
        raise UnsupportedVisionModelError(
            f"{source}: a {layers}-layer, {width}-wide vision tower is none of the CLIP vision encoders "
            f"CLIPVisionLoader runs (ViT-L/14: 24 x 1024, ViT-H/14: 32 x 1280, ViT-bigG/14: 48 x 1664); SigLIP and "
            f"DINO encoders belong to model families Hearth does not have")
    name, base = known
    name = name if grid * patch == 224 else f"{name}-{grid * patch}"
    return name, replace(base, **measured)


# -- OpenCLIP's layout --------------------------------------------------------------------------------------

_OPEN_CLIP_NAMES = {"class_embedding": "vision_model.embeddings.class_embedding",
                    "conv1.weight": PATCH_KEY,
                    "positional_embedding": POSITIONS_KEY,
                    "ln_pre.weight": "vision_model.pre_layrnorm.weight",
                    "ln_pre.bias": "vision_model.pre_layrnorm.bias",
                    "ln_post.weight": "vision_model.post_layernorm.weight",
                    "ln_post.bias": "vision_model.post_layernorm.bias"}
_OPEN_CLIP_BLOCK = {"ln_1.": "layer_norm1.", "ln_2.": "layer_norm2.", "mlp.c_fc.": "mlp.fc1.",
                    "mlp.c_proj.": "mlp.fc2.", "attn.out_proj.": "self_attn.out_proj."}


def convert_open_clip(sd: Mapping[str, torch.Tensor], prefix: str = "visual.") -> dict[str, torch.Tensor]:
    """OpenCLIP's visual tower (keys under ``prefix``) in the Hugging Face layout: the fused ``in_proj`` split into
    q, k, v and ``proj`` (``x @ proj``) turned into ``visual_projection.weight``. Keys outside ``prefix`` are dropped."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if rest in _OPEN_CLIP_NAMES:
            out[_OPEN_CLIP_NAMES[rest]] = value
        elif rest == "proj":
            out["visual_projection.weight"] = value.t()
        elif rest.startswith("transformer.resblocks."):
            index, _, inner = rest[len("transformer.resblocks."):].partition(".")
            layer = f"vision_model.encoder.layers.{index}."
            if inner.startswith("attn.in_proj_"):
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                    out[f"{layer}self_attn.{name}.{inner[len('attn.in_proj_'):]}"] = part
                continue
            for old, new in _OPEN_CLIP_BLOCK.items():
                if inner.startswith(old):
                    inner = new + inner[len(old):]
                    break
            out[layer + inner] = value
    return out


# -- the network --------------------------------------------------------------------------------------------

class _Embeddings(nn.Module):
    def __init__(self, c: CLIPVisionConfig):
        super().__init__()
        self.class_embedding = nn.Parameter(normal_init(c.width))
        self.patch_embedding = nn.Conv2d(3, c.width, c.patch_size, stride=c.patch_size, bias=False)
        self.position_embedding = nn.Embedding(c.positions, c.width, _weight=normal_init(c.positions, c.width))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight.to(patches.dtype)


class _Encoder(nn.Module):
    def __init__(self, c: CLIPVisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(CLIPLayer(c, causal=False) for _ in range(c.layers))


class _VisionModel(nn.Module):
    def __init__(self, c: CLIPVisionConfig):
        super().__init__()
        self.embeddings = _Embeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c.width, eps=c.eps)  # (sic) transformers' key name
        self.encoder = _Encoder(c)
        self.post_layernorm = nn.LayerNorm(c.width, eps=c.eps)


@dataclass
class VisionOutput:
    """``last_hidden_state`` ``[B, 1 + patches, width]`` (before the final norm, as transformers gives it),
    ``penultimate`` (the second-to-last layer's output, ComfyUI's ``penultimate_hidden_states``) and
    ``image_embeds`` (the class token, normed and projected) ``[B, projection_dim]``."""

    last_hidden_state: torch.Tensor
    penultimate: torch.Tensor
    image_embeds: torch.Tensor


class CLIPVisionEncoder(nn.Module):
    """CLIP's image tower with its projection: ``forward(pixels [B, 3, S, S]) -> VisionOutput``."""

    def __init__(self, config: CLIPVisionConfig):
        super().__init__()
        self.config = config
        self.vision_model = _VisionModel(config)
        if config.projection_dim:
            self.visual_projection = nn.Linear(config.width, config.projection_dim, bias=False)

    def forward(self, pixels: torch.Tensor) -> VisionOutput:
        vm = self.vision_model
        x = vm.pre_layrnorm(vm.embeddings(pixels.to(compute_dtype_of(self))))
        penultimate = x
        for index, layer in enumerate(vm.encoder.layers):
            x = layer(x)
            if index == len(vm.encoder.layers) - 2:
                penultimate = x
        pooled = vm.post_layernorm(x[:, 0, :])
        embeds = self.visual_projection(pooled) if self.config.projection_dim else pooled
        return VisionOutput(x, penultimate, embeds)


def preprocess(image: torch.Tensor, size: int = 224, crop: bool = True, mean: tuple[float, ...] = IMAGE_MEAN,
               std: tuple[float, ...] = IMAGE_STD) -> torch.Tensor:
    """IMAGE ``[B, H, W, C]`` in 0..1 -> the encoder's input ``[B, 3, size, size]``, as ComfyUI's clip_preprocess.

    An image that is not already ``size`` square is resized with antialiased bicubic: with ``crop`` its shorter
    side to ``size`` (rounded) and the middle cut out, without it squashed to the square. Values are clipped and
    rounded to 1/255 steps, then normalised by ``mean`` and ``std``. An alpha channel is dropped.
    """
    image = image[..., :3].float().movedim(-1, 1)
    height, width = image.shape[2:]
    if (height, width) != (size, size):
        if crop:
            scale = size / min(height, width)
            target = (round(scale * height), round(scale * width))
        else:
            target = (size, size)
        image = F.interpolate(image, size=target, mode="bicubic", antialias=True)
        top, left = (image.shape[2] - size) // 2, (image.shape[3] - size) // 2
        image = image[:, :, top:top + size, left:left + size]
    image = torch.clip(255.0 * image, 0, 255).round() / 255.0
    mean_t = torch.tensor(mean, device=image.device).view(3, 1, 1)
    std_t = torch.tensor(std, device=image.device).view(3, 1, 1)
    return (image - mean_t) / std_t


def to_open_clip(sd: Mapping[str, torch.Tensor], prefix: str = "visual.") -> dict[str, torch.Tensor]:
    """The inverse of :func:`convert_open_clip` (q, k, v fused back into ``in_proj``), for writing OpenCLIP-layout
    files such as the tiny unCLIP checkpoint's ``embedder.model.visual.*``."""
    names = {new: old for old, new in _OPEN_CLIP_NAMES.items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key in names:
            out[prefix + names[key]] = value
        elif key == "visual_projection.weight":
            out[prefix + "proj"] = value.t().contiguous()
        elif m := re.match(r"vision_model\.encoder\.layers\.(\d+)\.(.+)$", key):
            index, inner = m.groups()
            block = f"{prefix}transformer.resblocks.{index}."
            if inner.startswith("self_attn.q_proj."):
                kind = inner.rsplit(".", 1)[1]
                parts = [sd[f"vision_model.encoder.layers.{index}.self_attn.{p}_proj.{kind}"] for p in "qkv"]
                out[f"{block}attn.in_proj_{kind}"] = torch.cat(parts, dim=0)
                continue
            if inner.startswith(("self_attn.k_proj.", "self_attn.v_proj.")):
                continue
            for old, new in _OPEN_CLIP_BLOCK.items():
                if inner.startswith(new):
                    inner = old + inner[len(new):]
                    break
            out[block + inner] = value
    return out
