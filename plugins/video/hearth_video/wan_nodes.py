"""Nodes of this part of the video plugin (filled in by its part's work)."""

NODES: dict = {}
TINY_MODELS: dict = {}
