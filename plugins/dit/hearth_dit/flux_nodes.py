"""Flux.1 (dev, schnell): its transformer's files, tiny model and nodes."""

from __future__ import annotations

from typing import Any

NODES: dict[str, Any] = {}
TINY_MODELS: dict[str, Any] = {}
