"""``comfy install / uninstall / update / list / lock / sync``: packs in an environment, through its lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from hearth.cli.env import _echo_json, env_option, json_option, user_errors
from hearth.cli.main import UserError
from hearth.registry import envs
from hearth.registry import install as installer
from hearth.registry.config import Index, indexes_in_priority, load_config


class RichProgress(installer.Progress):
    """Steps as dim lines and one bar per download, on stderr so that --json output stays clean."""

    def __init__(self, quiet: bool = False):
        self._console = None
        self.quiet = quiet
        self.bars = None

    @property
    def console(self):  # noqa: ANN201 - rich's Console, made (and imported) only when there is something to show
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def step(self, text: str) -> None:
        if self.quiet:
            return
        if self.bars is not None:
            self.console.print(f"[dim]{text}[/]", highlight=False, markup=True)
        else:  # plain click output: rich is imported only once there is a download to show
            click.secho(text, dim=True, err=True)

    def download(self, name: str, total: int | None) -> Callable[[int], None]:
        if self.quiet:
            return lambda n: None
        if self.bars is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self.bars = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), console=self.console, transient=False)
            self.bars.start()
        label = name if len(name) <= 40 else name[:37] + "..."
        task = self.bars.add_task(label, total=total)
        bars = self.bars
        return lambda n: bars.advance(task, n)


def registry_option(fn: Callable) -> Callable:
    return click.option("--registry", "registry_url", metavar="URL",
                        help="Use only this registry (default: the configured registries, highest priority first)."
                        )(fn)


def _indexes(registry_url: str | None, required: bool = True) -> list[Index]:
    from hearth.registry.config import ConfigError

    try:
        return indexes_in_priority(load_config(), registry_url)
    except ConfigError:
        if required:
            raise
        return []


def _report(result: installer.Result, as_json: bool, verb: str) -> None:
    if as_json:
        _echo_json({"env": result.env.name, "generation": result.generation, "packs": result.packs,
                    "added": result.added, "removed": result.removed,
                    "changed": {k: list(v) for k, v in result.changed.items()},
                    "python_packages": result.python_packages, "seconds": round(result.seconds, 3),
                    "message": result.message})
        return
    if result.generation is None:
        click.echo(f"environment {result.env.name!r}: {result.message or 'nothing to change'}")
        return
    parts = [f"+{k} {v}" for k, v in sorted(result.added.items())]
    parts += [f"-{k} {v}" for k, v in sorted(result.removed.items())]
    parts += [f"{k} {a} -> {b}" for k, (a, b) in sorted(result.changed.items())]
    click.echo(f"{verb} in environment {result.env.name!r}, now generation {result.generation} "
               f"({', '.join(parts) or 'same packs'}; {result.python_packages} package(s) locked, "
               f"{result.seconds:.1f}s)")


@click.command("install")
@click.argument("packs", nargs=-1)
@click.option("--workflow", "workflow", type=click.Path(dir_okay=False, path_type=Path),
              help="Also install the packs that provide the node classes this workflow uses and the environment lacks.")
@env_option
@registry_option
@click.option("--offline", is_flag=True, help="Use only what is cached; never touch the network.")
@json_option
@user_errors
def install(packs: tuple[str, ...], workflow: Path | None, env_name: str | None, registry_url: str | None,
            offline: bool, as_json: bool) -> None:
    """Install PACK[==VERSION|SPEC]... into an environment: resolve, lock, verify hashes, switch atomically.

    Packs come from the configured registries, highest priority first (a name a higher registry has is never
    taken from a lower one); their Python packages from those registries, then PyPI ($COMFY_PYPI_URL, "none"
    for no PyPI) and any folders in $COMFY_FIND_LINKS. Torch and the rest of Hearth's base are never installed:
    the environment uses Hearth's own. The result is a new generation; `comfy env rollback` returns to the last.
    """
    env = envs.get_environment(env_name)
    missing: set[str] = set()
    if workflow is not None:  # a bad workflow file is named before any registry is asked
        from hearth.registry import workflow_deps

        try:
            missing = workflow_deps.missing_node_classes(workflow, env)
        except workflow_deps.WorkflowError as exc:
            raise UserError(str(exc)) from None
    indexes = _indexes(registry_url)
    workflow_packs: list[str] = []
    if workflow is not None:
        found, unknown = workflow_deps.packs_for_classes(sorted(missing), indexes) if missing else ({}, [])
        if unknown:
            raise UserError(f"{workflow}: no registry has a pack for node class{'es' if len(unknown) > 1 else ''} "
                            f"{', '.join(sorted(unknown))}; nothing was installed")
        workflow_packs = sorted(set(found.values()))
        if not workflow_packs and not packs:
            click.echo(f"{workflow}: environment {env.name!r} already has every node class it uses")
            return
    with RichProgress(quiet=as_json) as progress:
        result = installer.install(env, list(packs), indexes=indexes, workflow_packs=workflow_packs,
                                   progress=progress, offline=offline)
    _report(result, as_json, "installed")


@click.command("uninstall")
@click.argument("packs", nargs=-1, required=True)
@env_option
@registry_option
@click.option("--offline", is_flag=True, help="Use only what is cached.")
@json_option
@user_errors
def uninstall(packs: tuple[str, ...], env_name: str | None, registry_url: str | None, offline: bool,
              as_json: bool) -> None:
    """Remove PACKs (and whatever only they needed) as a new generation."""
    env = envs.get_environment(env_name)
    with RichProgress(quiet=as_json) as progress:
        result = installer.uninstall(env, list(packs), indexes=_indexes(registry_url, required=False),
                                     progress=progress, offline=offline)
    _report(result, as_json, "uninstalled")


@click.command("update")
@click.argument("packs", nargs=-1)
@env_option
@registry_option
@json_option
@user_errors
def update(packs: tuple[str, ...], env_name: str | None, registry_url: str | None, as_json: bool) -> None:
    """Move PACKs (default: every pack) to the newest versions their specs and the base allow."""
    env = envs.get_environment(env_name)
    with RichProgress(quiet=as_json) as progress:
        result = installer.update(env, list(packs) or None, indexes=_indexes(registry_url), progress=progress)
    _report(result, as_json, "updated")


@click.command("list")
@env_option
@click.option("--all", "show_all", is_flag=True, help="Also list the Python packages the packs need.")
@json_option
@user_errors
def list_(env_name: str | None, show_all: bool, as_json: bool) -> None:
    """The packs in an environment: version, format, registry."""
    from rich.console import Console
    from rich.table import Table

    from hearth.registry.lock import parse_lock

    env = envs.get_environment(env_name)
    gen = env.current()
    rows = [{"pack": k, **v} for k, v in sorted(gen.packs.items())]
    deps = []
    if show_all:
        lock = parse_lock(env.lock_path.read_text(encoding="utf-8"), str(env.lock_path))
        deps = [{"name": p.name, "version": p.version, "url": p.artifact.url} for p in lock.packages
                if p.name not in gen.packs]
    if as_json:
        _echo_json({"env": env.name, "generation": gen.number, "packs": rows, **({"python": deps} if show_all else {})})
        return
    if not rows:
        click.echo(f"environment {env.name!r} (generation {gen.number}) has no packs; `comfy install PACK` adds one")
    else:
        table = Table("pack", "version", "format", "registry", "requested",
                      title=f"environment {env.name}, generation {gen.number}")
        for r in rows:
            table.add_row(r["pack"], r["version"], r.get("format", ""), r.get("registry", "") or "-",
                          r.get("requested", "") or "(dependency)")
        Console().print(table)
    if deps:
        table = Table("python package", "version", title="needed by the packs")
        for d in deps:
            table.add_row(d["name"], d["version"])
        Console().print(table)


@click.command("lock")
@click.argument("packs", nargs=-1)
@env_option
@registry_option
@click.option("--upgrade", is_flag=True, help="Prefer the newest versions over those in the current lock.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the lock here (default: print it).")
@user_errors
def lock(packs: tuple[str, ...], env_name: str | None, registry_url: str | None, upgrade: bool,
         output: Path | None) -> None:
    """Resolve the environment's packs (plus PACKs) to a pylock.toml without installing anything."""
    env = envs.get_environment(env_name)
    with RichProgress(quiet=output is None) as progress:
        body, requested = installer.lock_only(env, list(packs), indexes=_indexes(registry_url),
                                              output=output, upgrade=upgrade, progress=progress)
    if output is None:
        click.echo(body, nl=False)
    else:
        click.echo(f"wrote {output} ({body.count('[[packages]]')} packages for {', '.join(requested) or 'no packs'})")


@click.command("sync")
@click.option("--lock", "lock_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Make the environment match this lock instead of its own.")
@env_option
@registry_option
@click.option("--offline", is_flag=True, help="Use only cached files.")
@json_option
@user_errors
def sync(lock_file: Path | None, env_name: str | None, registry_url: str | None, offline: bool,
         as_json: bool) -> None:
    """Make an environment match its lock exactly (a no-op when it already does)."""
    env = envs.get_environment(env_name)
    if lock_file is not None and not lock_file.is_file():
        raise UserError(f"--lock {lock_file}: no such file")
    with RichProgress(quiet=as_json) as progress:
        result = installer.sync(env, lock_file, indexes=_indexes(registry_url, required=False),
                                progress=progress, offline=offline)
    _report(result, as_json, "synced")
