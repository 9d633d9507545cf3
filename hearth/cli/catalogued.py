"""The node catalogue as the CLI uses it: listing and checking nodes without importing torch or any plugin.

``comfy nodes``, ``comfy plugins`` and ``comfy run --check`` build their Runtime without loading plugins and ask
:func:`node_catalogue` first. A fresh catalogue answers at once; a missing or stale one is rebuilt (loading every
plugin, as these commands always did) and saved for the next command. Whatever the catalogue cannot answer alone
-- a dynamic node of a ComfyUI pack, whose class is not importable by name -- falls back to the loaded plugins, so
the output never depends on whether the catalogue was there (``HEARTH_CATALOGUE=off`` turns it off).
"""

from __future__ import annotations

from collections.abc import Iterable

import click

from hearth.core.catalogue import Catalogue, catalogue_for, save_catalogue
from hearth.core.catalogue_key import catalogue_enabled
from hearth.core.plugins import PluginRecord
from hearth.core.runtime import Runtime


def node_catalogue(runtime: Runtime, *, quiet: bool = False) -> Catalogue | None:
    """The catalogue for ``runtime`` (loaded, else built and saved), or ``None`` when catalogues are off.

    The plugins that failed to load are named on stderr (unless ``quiet``), from the catalogue's records when it
    came from the cache, exactly as :func:`hearth.cli.common.runtime_for` names them after loading.
    """
    env = None if runtime.options.environ is None else dict(runtime.options.environ)
    if not catalogue_enabled(env):
        if not quiet:
            report_failed(runtime.plugins.records.values())
        return None
    catalogue, cached = catalogue_for(runtime)
    if not quiet:
        report_failed(catalogue.plugin_records() if cached else runtime.plugins.records.values())
    return catalogue


def report_failed(records: Iterable[PluginRecord]) -> None:
    """One warning line per plugin that failed to load."""
    for record in records:
        if record.error:
            click.echo(f"warning: plugin {record.name} not loaded: {record.error} (see `comfy plugins`)", err=True)


def keep(catalogue: Catalogue | None, runtime: Runtime) -> None:
    """Save ``catalogue`` again when a dynamic node was read anew (its folders changed), so the next command
    need not read it again."""
    if catalogue is not None and catalogue.changed:
        save_catalogue(catalogue, runtime.options)
