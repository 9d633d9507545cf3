"""Loading checkpoint, VAE and text-encoder files once per process, as MODEL / CLIP / VAE values for nodes.

The core's generic loader nodes reach these through ``register_model_loaders`` (:mod:`hearth_sd.plugin`). Loads go
through the core's load cache (:func:`hearth.core.models.load_once`): two loader nodes naming one file share one
set of weights while some node output (:mod:`hearth_sd.sd_model` values, holding the record as ``source``) uses
them; when the executor's cache drops the last, the weights are freed and the next load reads the file again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch

from hearth.core.models import (
    Loaded,
    PatchedModel,
    compute_dtype,
    default_device,
    load_once,
    load_state_dict,
    read_header,
    strip_prefix,
)

from .checkpoint import (
    CONFIG_METADATA_KEY,
    build,
    load_checkpoint,
    load_unet,
    load_vae,
    text_config_from_state_dict,
)
from .clip_text import CLIPTextEncoder
from .embeddings import EmbeddingLibrary
from .families import FAMILIES
from .open_clip_text import OpenCLIPTextEncoder
from .ops import place
from .sd_model import SDVAE, SDClip, SDModel
from .text_encoding import CLIP

# Prefixes a standalone text-encoder file may carry around the layouts the encoders read.
_TEXT_PREFIXES = ("cond_stage_model.transformer.", "cond_stage_model.model.", "transformer.", "")


def checkpoint(path: str | Path, embeddings: Iterable[str | Path] = (),
               prediction: str | None = None) -> tuple[SDModel, SDClip, SDVAE]:
    """A checkpoint file as CheckpointLoaderSimple outputs it: ``(MODEL, CLIP, VAE)``."""
    path = Path(path)
    embeddings = tuple(str(e) for e in embeddings)
    device = default_device()

    def make() -> Loaded:
        ckpt = load_checkpoint(path, prediction=prediction, embeddings=embeddings, load_device=device)
        unet = PatchedModel(ckpt.model.unet, name=path.name, load_device=device,
                            memory_estimate=ckpt.model.memory_required)
        text = {name: PatchedModel(module, name=f"{path.name} (text {name})", load_device=device)
                for name, module in ckpt.clip.encoders.items()}
        vae = PatchedModel(ckpt.vae.model, name=f"{path.name} (VAE)", load_device=device)
        return Loaded(path, checkpoint=ckpt, unet=unet, text=text, vae=vae)

    record = load_once("checkpoint", path, make, embeddings, prediction, str(device))
    ckpt = record.checkpoint
    return (SDModel(ckpt.model, record.unet, record), SDClip(ckpt.clip, record.text, record),
            SDVAE(ckpt.vae, record.vae, record))


def unet(path: str | Path, weight_dtype: str = "default", device: str | None = None,
         prediction: str | None = None) -> SDModel:
    """An SD1/SD2/SDXL UNet file on its own (UNETLoader; or a checkpoint's UNet alone) as a MODEL, which samples as
    the MODEL of a checkpoint holding the same UNet does (see :func:`hearth_sd.checkpoint.load_unet`)."""
    path = Path(path)
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        model = load_unet(path, prediction=prediction, weight_dtype=weight_dtype, load_device=load_device)
        patcher = PatchedModel(model.unet, name=path.name, load_device=load_device,
                               memory_estimate=model.memory_required)
        return Loaded(path, model=model, unet=patcher)

    record = load_once("unet", path, make, weight_dtype, prediction, str(load_device))
    return SDModel(record.model, record.unet, record)


def vae(path: str | Path) -> SDVAE:
    """A standalone VAE file as a VAE value (VAELoader)."""
    path = Path(path)
    device = default_device()

    def make() -> Loaded:
        loaded = load_vae(path, load_device=device)
        return Loaded(path, vae=loaded, patcher=PatchedModel(loaded.model, name=path.name, load_device=device))

    record = load_once("vae", path, make, str(device))
    return SDVAE(record.vae, record.patcher, record)


def text_encoder(path: str | Path, embeddings: Iterable[str | Path] = (), device: str | None = None) -> SDClip:
    """A standalone text-encoder file (CLIPLoader, type ``stable_diffusion``): CLIP-L (HF layout) gives an SD1
    CLIP, OpenCLIP ViT-H (open_clip layout) an SD2 one. ``device="cpu"`` keeps it computing on the CPU.

    :raises ValueError: naming the file when it holds neither.
    """
    path = Path(path)
    embeddings = tuple(str(e) for e in embeddings)
    device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        header = read_header(path)
        keys = set(header.tensors)
        for prefix in _TEXT_PREFIXES:
            if prefix + "text_model.embeddings.token_embedding.weight" in keys:
                family, module_type = FAMILIES["sd1"], CLIPTextEncoder
                break
            if prefix + "token_embedding.weight" in keys and prefix + "transformer.resblocks.0.ln_1.weight" in keys:
                family, module_type = FAMILIES["sd2"], OpenCLIPTextEncoder
                break
        else:
            raise ValueError(f"{path}: not a CLIP-L or OpenCLIP ViT-H text encoder (no token embedding under the "
                             f"usual keys); CLIPLoader type stable_diffusion loads SD1 and SD2 text encoders")
        spec = family.text_encoders[0]
        state = strip_prefix(load_state_dict(path), prefix) if prefix else load_state_dict(path)
        heads = json.loads(header.metadata.get(CONFIG_METADATA_KEY, "{}")).get("text_heads", {}).get(spec.name)
        config = text_config_from_state_dict(state, spec, heads)
        module = place(build(module_type, config, state, f"{path} (text encoder)"), torch.device("cpu"),
                       compute_dtype(device))
        clip = CLIP(family, {spec.name: module}, embeddings=EmbeddingLibrary(embeddings), vocab_near=path)
        return Loaded(path, clip=clip, text={spec.name: PatchedModel(module, name=path.name, load_device=device)})

    record = load_once("text_encoder", path, make, embeddings, str(device))
    return SDClip(record.clip, record.text, record)

