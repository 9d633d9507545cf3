"""CONDITIONING nodes of the SD plugin with ComfyUI's names, inputs and outputs (combine, average, area, mask, ...)."""

from __future__ import annotations

NODES: dict[str, type] = {}
