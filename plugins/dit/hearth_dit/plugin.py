"""The ``hearth`` entry point of the DiT plugin: the nodes, tiny models and checkpoint formats of its parts."""

from __future__ import annotations

from hearth.core.hookspecs import hookimpl
from hearth.core.nodes import collect_nodes

from . import ae_nodes, flux_nodes, zimage_nodes

# Each part is a module with NODES and TINY_MODELS dicts and, optionally, model_formats(), model_loaders() and
# memory_estimate(model, input_shape, dtype); the hooks below gather them.
_PARTS = (ae_nodes, flux_nodes, zimage_nodes)


@hookimpl
def register_nodes():
    nodes: dict = {}
    for part in _PARTS:
        nodes.update(part.NODES)
    return nodes | collect_nodes(__package__)  # and every nodes_*.py module's


@hookimpl
def register_tiny_models():
    models: dict = {}
    for part in _PARTS:
        models.update(part.TINY_MODELS)
    return models or None


@hookimpl
def register_model_formats():
    # Detection runs when a file is loaded, never while plugins load, so model_formats() may import torch.
    formats: list = []
    for part in _PARTS:
        declare = getattr(part, "model_formats", None)
        if declare is not None:
            formats.extend(declare())
    return formats or None


@hookimpl
def register_model_loaders():
    loaders: dict = {}
    for part in _PARTS:
        declare = getattr(part, "model_loaders", None)
        if declare is not None:
            loaders.update(declare())
    return loaders or None


@hookimpl
def memory_estimate_for_model(model, input_shape, dtype):
    for part in _PARTS:
        estimate = getattr(part, "memory_estimate", None)
        answer = None if estimate is None else estimate(model, input_shape, dtype)
        if answer is not None:
            return answer
    return None
