"""The ``hearth`` entry point of the samplers pack: its samplers, schedules and nodes.

Imported when plugins load, so it must not import torch: the sampler modules load when their hooks are called,
and node modules defer torch to their functions.
"""

from __future__ import annotations

from hearth.core.hookspecs import hookimpl
from hearth.core.nodes import collect_nodes


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
    return collect_nodes(__package__)  # every nodes_*.py module
