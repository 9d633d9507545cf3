"""The ``hearth`` entry point of the video plugin: the nodes and tiny models of each of its parts."""

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
