"""The 16-channel autoencoder Flux.1 and Z-Image share, and the T5-XXL and CLIP-L text encoders of Flux."""

from __future__ import annotations

from typing import Any

NODES: dict[str, Any] = {}
TINY_MODELS: dict[str, Any] = {}
