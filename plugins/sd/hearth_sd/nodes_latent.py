"""LATENT nodes of the SD plugin with ComfyUI's names, inputs and outputs (empty, upscale, composite, batch, mask)."""

from __future__ import annotations

NODES: dict[str, type] = {}
