"""The ``hearth`` entry point of the video plugin: the nodes, tiny models and checkpoint formats of its parts."""

from __future__ import annotations

from core.hookspecs import hookimpl

from . import animatediff_nodes, video_nodes, wan_nodes

_PARTS = (animatediff_nodes, wan_nodes, video_nodes)


@hookimpl
def register_nodes():
    nodes: dict = {}
    for part in _PARTS:
        nodes.update(part.NODES)
    return nodes


@hookimpl
def register_tiny_models():
    models: dict = {}
    for part in _PARTS:
        models.update(part.TINY_MODELS)
    return models or None


@hookimpl
def register_model_formats():
    # A part declares its checkpoint formats in a model_formats() function. It may import torch: detection runs
    # when a file is loaded, never while plugins load.
    formats: list = []
    for part in _PARTS:
        declare = getattr(part, "model_formats", None)
        if declare is not None:
            formats.extend(declare())
    return formats or None
