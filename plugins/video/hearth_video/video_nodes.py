"""Video files and the Wan 2.1 VAE: animated WEBP/PNG, MP4 and WEBM nodes, and the VAE's format and tiny model."""

from __future__ import annotations

from core.model_folders import TinyModel


def _write_tiny_wan_vae(path, seed: int = 0) -> None:
    from .wan_vae import write_tiny_wan_vae

    write_tiny_wan_vae(path, seed)


def model_formats() -> list:
    from .wan_vae import model_format

    return [model_format()]


NODES: dict = {}
TINY_MODELS: dict = {
    "wan-vae": TinyModel("vae", "tiny-wan-vae.safetensors", _write_tiny_wan_vae,
                         "Wan 2.1 causal 3D VAE (random weights, 8 base channels), ~1 MB"),
}
