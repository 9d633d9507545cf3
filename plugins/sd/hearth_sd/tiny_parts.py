"""Tiny standalone files beside the tiny checkpoints: a VAE, a CLIP-L text encoder and a textual-inversion embedding.

Like :mod:`hearth_sd.tiny`, random weights in the real layouts (a VAE file's bare ``encoder.*``/``decoder.*``
keys, a ``clip_l.safetensors``-style ``text_model.*`` encoder, an A1111 ``emb_params`` embedding), so VAELoader,
CLIPLoader and ``embedding:name`` prompts run in tests and examples without a download.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hearth.core.models import write_safetensors

from .checkpoint import CONFIG_METADATA_KEY
from .clip_text import CLIPTextEncoder
from .families import SD1
from .vae import AutoencoderKL

TINY_NOTE = {"hearth.sd.tiny": "random weights, for tests and demos only"}


def _tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().to(torch.float16).contiguous() for key, value in module.state_dict().items()}


def write_tiny_vae(path: str | Path, seed: int = 0) -> Path:
    """A standalone VAE file (the tiny SD VAE config, keys without prefix)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 101)  # other weights than the checkpoints' VAE, so swapping it shows
        tensors = _tensors(AutoencoderKL(SD1.vae_tiny))
    return _write(tensors, path, TINY_NOTE)


def write_tiny_text_encoder(path: str | Path, seed: int = 0) -> Path:
    """A standalone CLIP-L text encoder (tiny, HF ``text_model.*`` layout) for CLIPLoader."""
    spec = SD1.text_encoders[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 202)
        tensors = _tensors(CLIPTextEncoder(spec.tiny))
    metadata = {CONFIG_METADATA_KEY: json.dumps({"text_heads": {spec.name: spec.tiny.heads}}), **TINY_NOTE}
    return _write(tensors, path, metadata)


def write_tiny_embedding(path: str | Path, seed: int = 0, vectors: int = 2) -> Path:
    """An A1111-layout embedding (``emb_params`` ``[vectors, 32]``) that fits every tiny text encoder."""
    generator = torch.Generator().manual_seed(seed + 303)
    width = SD1.text_encoders[0].tiny.width
    return _write({"emb_params": torch.randn(vectors, width, generator=generator)}, path, TINY_NOTE)


def _write(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(tensors, path, metadata)
    return path
