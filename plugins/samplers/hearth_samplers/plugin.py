"""The ``hearth`` entry point of the samplers pack: its samplers, schedules and nodes.

Imported when plugins load, so it must not import torch: the sampler modules load when their hooks are called,
and node modules defer torch to their functions.
"""

from __future__ import annotations

from hearth.core.hookspecs import hookimpl

from . import nodes_custom_sampling, nodes_guiders, nodes_ksampler, nodes_sigmas

NODE_MODULES = (nodes_ksampler, nodes_custom_sampling, nodes_guiders, nodes_sigmas)


@hookimpl
def register_samplers():
    from .catalog import SAMPLERS

    return dict(SAMPLERS)


@hookimpl
def register_schedulers():
    from .catalog import SCHEDULERS

    return dict(SCHEDULERS)


@hookimpl
def resolve_sampling_engine():
    # Imported when asked (it imports torch), by plugins that sample without a node (comfy.sample in packs).
    from . import engine

    return engine


@hookimpl
def register_nodes():
    nodes: dict[str, type] = {}
    for module in NODE_MODULES:
        nodes.update(module.NODES)
    return nodes
