"""The node catalogue as the CLI uses it: listing and checking nodes without importing torch or any plugin.

``comfy nodes``, ``comfy plugins`` and ``comfy run --check`` build their Runtime without loading plugins and ask
:func:`node_catalogue` first. A fresh catalogue answers at once. A missing or stale one is rebuilt (loading every
plugin, as these commands always did) and saved for the next command -- except for a command that passes
``background`` (``comfy run --check``): its uncached path reads only the nodes it validates, so it goes on
without the catalogue while a detached process rebuilds it (:mod:`hearth.cli.catalogue_background`). Whatever the
catalogue cannot answer alone -- a dynamic node of a ComfyUI pack, whose class is not importable by name -- falls
back to the loaded plugins, so the output never depends on whether the catalogue was there (``HEARTH_CATALOGUE=off``
turns it off).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import click

from hearth.core.catalogue import (
    Catalogue,
    build_catalogue,
    catalogue_file,
    catalogue_for,
    load_catalogue,
    save_catalogue,
)
from hearth.core.catalogue_key import catalogue_enabled, fingerprint
from hearth.core.plugins import PluginRecord
from hearth.core.runtime import Runtime


def node_catalogue(runtime: Runtime, *, quiet: bool = False,
                   background: Sequence[str] | None = None) -> Catalogue | None:
    """The catalogue for ``runtime`` (loaded, else built and saved), or ``None`` when catalogues are off.

    With ``background`` (the command's plugin options, see :func:`plugin_args`) a missing or stale catalogue is
    not built here: the answer is ``None``, as when catalogues are off, and a detached process rebuilds it.

    The plugins that failed to load are named on stderr (unless ``quiet``), from the catalogue's records when it
    came from the cache, exactly as :func:`hearth.cli.common.runtime_for` names them after loading.
    """
    env = None if runtime.options.environ is None else dict(runtime.options.environ)
    if not catalogue_enabled(env):
        if not quiet:
            report_failed(runtime.plugins.records.values())
        return None
    if background is not None:
        key = fingerprint(runtime.options)
        found = load_catalogue(runtime.options, runtime.model_folders, key=key)
        if found is None:
            from hearth.cli.catalogue_background import start_build

            start_build(key, background)
            if not quiet:
                report_failed(runtime.plugins.records.values())
            return None
        if not quiet:
            report_failed(found.plugin_records())
        return found
    catalogue, cached = catalogue_for(runtime)
    if not quiet:
        report_failed(catalogue.plugin_records() if cached else runtime.plugins.records.values())
    return catalogue


def plugin_args(custom_nodes: tuple[Path, ...], env_name: str | None, isolation: str | None) -> list[str]:
    """The ``comfy`` options that choose these plugins, for a background build to read the same ones (folders
    made absolute: the build need not resolve them from this working folder)."""
    args = [arg for folder in custom_nodes for arg in ("--custom-nodes", str(folder.absolute()))]
    if env_name is not None:
        args += ["--env", env_name]
    if isolation is not None:
        args += ["--isolation", isolation]
    return args


def build_now(make_runtime: Callable[[], Runtime], lock: Path) -> None:
    """What the background build does: lower its priority, build and save the catalogue for the Runtime
    ``make_runtime`` gives unless it is fresh by now, and release ``lock`` whatever happens."""
    from hearth.cli.catalogue_background import build_niceness, release

    try:
        build_niceness()
        runtime = make_runtime()
        key = fingerprint(runtime.options)
        if load_catalogue(runtime.options, runtime.model_folders, key=key) is None:
            built = build_catalogue(runtime, key=key)
            # Saved only while the lock is there: a folder removed meanwhile (a test's, a bench's) stays removed.
            if lock.exists():
                save_catalogue(built, runtime.options, path=catalogue_file(key))
    finally:
        release(lock)


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
