"""The ``hearth`` entry point of the SD plugin: declares the checkpoint formats (nodes come with the node API)."""

from __future__ import annotations

from core.hookspecs import hookimpl

from .formats import sd_formats


@hookimpl
def register_model_formats():
    return sd_formats()
