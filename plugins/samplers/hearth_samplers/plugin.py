"""The ``hearth`` entry point of the samplers pack: its samplers, schedules and nodes."""

from __future__ import annotations

from core.hookspecs import hookimpl

from .registry import SAMPLERS, SCHEDULERS


@hookimpl
def register_samplers():
    return dict(SAMPLERS)


@hookimpl
def register_schedulers():
    return dict(SCHEDULERS)
