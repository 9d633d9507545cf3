"""The CLIP_VISION value (ComfyUI's ``comfy.clip_vision.ClipVisionModel``) and loading it from a file or a checkpoint.

:class:`CLIPVision` runs :class:`hearth_sd.clip_vision.CLIPVisionEncoder` where the model manager puts it and
returns ComfyUI's CLIP_VISION_OUTPUT: an :class:`Output` whose ``image_embeds``, ``last_hidden_state``,
``penultimate_hidden_states``, ``image_sizes`` and ``mm_projected`` (None: Hearth loads no LLaVA projector) read as
attributes or items. Files load once per process through the core's load cache, like checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hearth.core.models import (
    Loaded,
    ModelValue,
    PatchedModel,
    compute_dtype,
    default_device,
    load_once,
    load_state_dict,
    read_header,
    strip_prefix,
)

from .checkpoint import build
from .clip_vision import (
    IMAGE_MEAN,
    IMAGE_STD,
    PATCH_KEY,
    CLIPVisionConfig,
    CLIPVisionEncoder,
    UnsupportedVisionModelError,
    config_from_shapes,
    convert_open_clip,
    preprocess,
)
from .ops import place

OPEN_CLIP_PREFIX = "visual."
# Prefixes a Hugging Face layout file may carry (a whole CLIPModel's, or one saved from a wrapper).
_HF_PREFIXES = ("", "clip_vision_model.", "model.")


class Output:
    """ComfyUI's ``comfy.clip_vision.Output``: the encoder's outputs as attributes and as items."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, item: Any) -> None:
        setattr(self, key, item)

    def __contains__(self, key: str) -> bool:
        return hasattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def __repr__(self) -> str:
        # The identity too: the samplers batch conditioning entries whose options print alike, and two encodings
        # of different images must not pass for one.
        shapes = {k: tuple(v.shape) for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return f"<CLIP_VISION_OUTPUT {shapes} at {id(self):#x}>"


class CLIPVision(ModelValue):
    """CLIP_VISION: an image encoder behind a ``PatchedModel`` (so the memory budget and LRU see it)."""

    WEIGHT_PREFIX = "vision_model."

    def __init__(self, encoder: CLIPVisionEncoder, patcher: PatchedModel, name: str = "CLIP vision",
                 source: Any = None) -> None:
        super().__init__(patcher, source)
        self.encoder = encoder
        self.name = name

    @property
    def config(self) -> CLIPVisionConfig:
        return self.encoder.config

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def model(self) -> CLIPVisionEncoder:
        return self.encoder

    # ComfyUI's ClipVisionModel attributes, for custom nodes that preprocess themselves (IP-Adapter packs do).
    @property
    def image_mean(self) -> list[float]:
        return list(IMAGE_MEAN)

    @property
    def image_std(self) -> list[float]:
        return list(IMAGE_STD)

    def get_sd(self) -> dict[str, torch.Tensor]:
        return self.encoder.state_dict()

    def encode_image(self, image: torch.Tensor, crop: bool = True) -> Output:
        """CLIP_VISION_OUTPUT of IMAGE ``[B, H, W, C]``: ComfyUI's preprocessing then the encoder, outputs in fp32
        on the CPU (ComfyUI's intermediate device)."""
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
            got = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"CLIP vision encode: image must be an IMAGE [B, H, W, 3], got {got}")
        if image.shape[-1] == 1:
            image = image.expand(*image.shape[:3], 3)
        size = self.image_size
        self.ensure_loaded(image.shape[0] * self.config.positions * self.config.intermediate * 4 * 4)
        device = self.patcher.load_device
        pixels = preprocess(image.to(device), size=size, crop=crop)
        with torch.no_grad():
            out = self.encoder(pixels)
        result = Output()
        result["last_hidden_state"] = out.last_hidden_state.float().cpu()
        result["image_embeds"] = out.image_embeds.float().cpu()
        result["penultimate_hidden_states"] = out.penultimate.float().cpu()
        result["image_sizes"] = [pixels.shape[1:]] * pixels.shape[0]
        result["mm_projected"] = None
        return result

    def __repr__(self) -> str:
        return f"<CLIPVision {self.name} {self.patcher.name!r}>"


def hf_prefix(keys: Mapping[str, Any]) -> str | None:
    """Which of the Hugging Face prefixes a file's vision keys sit under (None: not that layout)."""
    return next((prefix for prefix in _HF_PREFIXES if prefix + PATCH_KEY in keys), None)


def vision_state(sd: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The vision tower's tensors of a state dict in the Hugging Face layout (converted from OpenCLIP's).

    :raises UnsupportedVisionModelError: naming ``source`` when it holds no CLIP vision tower.
    """
    prefix = hf_prefix(sd)
    if prefix is not None:
        state = strip_prefix(sd, prefix) if prefix else dict(sd)
        return {k: v for k, v in state.items() if k.startswith(("vision_model.", "visual_projection."))}
    if OPEN_CLIP_PREFIX + "conv1.weight" in sd:
        return convert_open_clip(sd, OPEN_CLIP_PREFIX)
    raise UnsupportedVisionModelError(
        f"{source}: no CLIP vision encoder in it (neither vision_model.* nor OpenCLIP visual.* keys); "
        f"{_what_it_is(sd)}CLIPVisionLoader loads CLIP ViT-L/14, ViT-H/14 and ViT-bigG/14 image encoders from "
        f"models/clip_vision")


def _what_it_is(keys: Mapping[str, Any]) -> str:
    if any(k.startswith(("model.diffusion_model.", "input_blocks.")) for k in keys):
        return "it looks like a diffusion model or checkpoint (CheckpointLoaderSimple, UNETLoader); "
    if any("text_model.embeddings.token_embedding" in k or k.endswith("token_embedding.weight") for k in keys):
        return "it looks like a text encoder (load that with CLIPLoader); "
    return ""


def what_it_is(path: str | Path) -> str:
    """A hint for messages: what a file that is no CLIP vision model looks like it is ('' when unclear)."""
    try:
        return _what_it_is(read_header(path).tensors)
    except Exception:  # an unreadable file: the loader's own error says why
        return ""


def build_encoder(state: Mapping[str, torch.Tensor], metadata: Mapping[str, str], source: str,
                  device: torch.device) -> tuple[str, CLIPVisionEncoder]:
    """``(name, encoder)`` for Hugging Face layout tensors: config from the shapes, weights adopted as stored."""
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    name, config = config_from_shapes(shapes, metadata, source)
    encoder = build(CLIPVisionEncoder, config, state, f"{source} (CLIP vision)")
    return name, place(encoder, torch.device("cpu"), compute_dtype(device))


def load(path: str | Path, device: str | None = None, **_: Any) -> CLIPVision:
    """A CLIP vision file (models/clip_vision) as a CLIP_VISION value: Hugging Face ``vision_model.*`` layout
    (``clip_vision_g/h/vit-l.safetensors`` as ComfyUI's users have them) or OpenCLIP's ``visual.*``.

    :raises UnsupportedVisionModelError: naming the file when it holds no encoder Hearth runs.
    """
    path = Path(path)
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        header = read_header(path)
        state = vision_state(load_state_dict(path), str(path))
        name, encoder = build_encoder(state, header.metadata, str(path), load_device)
        patcher = PatchedModel(encoder, name=path.name, load_device=load_device)
        return Loaded(path, encoder=encoder, patcher=patcher, name=name)

    record = load_once("clip_vision", path, make, str(load_device))
    return CLIPVision(record.encoder, record.patcher, record.name, record)


def checkpoint_vision(path: str | Path, device: str | None = None) -> CLIPVision | None:
    """The CLIP vision tower an SD2.1-unclip checkpoint carries under ``embedder.model.visual.``, loaded once per
    process; None for a checkpoint without one (ComfyUI's unCLIPCheckpointLoader gives None then too)."""
    from .formats import UNCLIP_VISION_PREFIX

    path = Path(path)
    header = read_header(path)
    if UNCLIP_VISION_PREFIX + "conv1.weight" not in header.tensors:
        return None
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        sd = load_state_dict(path, prefix=UNCLIP_VISION_PREFIX)
        state = convert_open_clip(sd, UNCLIP_VISION_PREFIX)
        name, encoder = build_encoder(state, header.metadata, str(path), load_device)
        patcher = PatchedModel(encoder, name=f"{path.name} (CLIP vision)", load_device=load_device)
        return Loaded(path, encoder=encoder, patcher=patcher, name=name)

    record = load_once("unclip_vision", path, make, str(load_device))
    return CLIPVision(record.encoder, record.patcher, record.name, record)
