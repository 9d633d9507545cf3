"""The ``hearth`` entry point of the SD plugin: checkpoint formats and SD2 prediction (nodes come with the node API)."""

from __future__ import annotations

from core.hookspecs import hookimpl

from .formats import resolve_sd2_prediction, sd_formats


@hookimpl
def register_model_formats():
    return sd_formats()


@hookimpl
def resolve_model_format(shapes, metadata, formats):
    # SD2 v-prediction and eps files have identical keys; only metadata (when present) tells them apart.
    return resolve_sd2_prediction(shapes, metadata, formats)
