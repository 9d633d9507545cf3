"""The ``hearth`` entry point of the audio plugin: every ``nodes_*.py`` module's nodes. No torch at import."""

from __future__ import annotations

from hearth.core.hookspecs import hookimpl
from hearth.core.nodes import collect_nodes


@hookimpl
def register_nodes():
    return collect_nodes(__package__)
