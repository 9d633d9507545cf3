"""Z-Image Turbo: its DiT, the Qwen3-4B text encoder (CLIPLoader type lumina2), tiny models and nodes."""

from __future__ import annotations

from typing import Any

NODES: dict[str, Any] = {}
TINY_MODELS: dict[str, Any] = {}
