"""``comfy env``: create, list, use, inspect, remove environments, and walk their generations."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

import click

from hearth.cli.main import HearthGroup, UserError
from hearth.registry import envs
from hearth.registry.base import base_drift
from hearth.registry.envs import Environment, EnvironmentError_


def user_errors(fn: Callable) -> Callable:
    """Environment, lock, config and registry failures become one-line user errors (exit 2)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if _is_user_error(exc):
                raise UserError(str(exc)) from None
            raise

    return wrapper


def _is_user_error(exc: Exception) -> bool:
    # Imported only when something failed: the registry client pulls in httpx, which a no-op sync never needs.
    from hearth.registry.client import RegistryError
    from hearth.registry.config import ConfigError
    from hearth.registry.lock import LockError

    return isinstance(exc, EnvironmentError_ | ConfigError | RegistryError | LockError)


def env_option(fn: Callable) -> Callable:
    return click.option("--env", "env_name", metavar="NAME",
                        help="Environment to act on (default: $COMFY_ENV, else the one `comfy env use` chose, "
                             "else 'default').")(fn)


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(fn)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def env_summary(env: Environment) -> dict:
    gen = env.current()
    return {"name": env.name, "root": str(env.root), "generation": gen.number, "current": env.name ==
            envs.current_env_name(), "packs": {k: v["version"] for k, v in sorted(gen.packs.items())},
            "python": str(env.python), "site_packages": str(env.site_packages),
            "custom_nodes": str(env.custom_nodes), "lock": str(env.lock_path)}


@click.group("env", cls=HearthGroup)
def env() -> None:
    """Environments: sets of packs with their own locks and generations."""


@env.command("create")
@click.argument("name")
@json_option
@user_errors
def create(name: str, as_json: bool) -> None:
    """Make a new, empty environment NAME (its base: this Hearth and its torch)."""
    made = envs.create_environment(name)
    if as_json:
        _echo_json(env_summary(made))
        return
    base = made.base
    click.echo(f"created environment {name!r} at {made.root} (base: comfy-hearth {base.get('comfy-hearth', '?')}, "
               f"torch {base.get('torch', 'none')}); use it with `comfy env use {name}`")


@env.command("list")
@json_option
@user_errors
def list_(as_json: bool) -> None:
    """The environments, the current one marked."""
    from rich.console import Console
    from rich.table import Table

    found = envs.list_environments()
    rows = [env_summary(e) for e in found]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no environments yet; `comfy env create NAME` makes one (the first install makes 'default')")
        return
    table = Table("", "name", "generation", "packs", "path")
    for r in rows:
        table.add_row("*" if r["current"] else "", r["name"], str(r["generation"]), str(len(r["packs"])), r["root"])
    Console().print(table)


@env.command("use")
@click.argument("name")
@user_errors
def use(name: str) -> None:
    """Make NAME the current environment for later commands ($COMFY_ENV still overrides it)."""
    chosen = envs.use_environment(name)
    click.echo(f"now using environment {chosen.name!r} (generation {chosen.generation})")


@env.command("info")
@env_option
@json_option
@user_errors
def info(env_name: str | None, as_json: bool) -> None:
    """The environment's generation, packs, base and paths."""
    from rich.console import Console
    from rich.table import Table

    e = envs.get_environment(env_name)
    data = env_summary(e)
    data["base"] = e.base
    data["base_drift"] = {k: list(v) for k, v in base_drift(e).items()}
    data["pack_details"] = e.current().packs
    if as_json:
        _echo_json(data)
        return
    console = Console()
    console.print(f"[bold]{e.name}[/] — generation {data['generation']}, {len(data['packs'])} pack(s)")
    for key in ("root", "python", "site_packages", "custom_nodes", "lock"):
        console.print(f"  {key.replace('_', '-')}: {data[key]}", highlight=False)
    console.print(f"  base: comfy-hearth {e.base.get('comfy-hearth', '?')}, torch {e.base.get('torch', 'none')}, "
                  f"{len(e.base)} packages in all (fixed; never installed into the environment)", highlight=False,
                  soft_wrap=True)
    drift = base_drift(e)
    if drift:
        changed = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in sorted(drift.items())[:5])
        console.print(f"  [yellow]warning:[/] Hearth's runtime has changed since this environment was made "
                      f"({changed}); make a new environment to pin the new base", highlight=False, soft_wrap=True)
    if data["pack_details"]:
        table = Table("pack", "version", "format", "registry", "requested")
        for name, p in sorted(data["pack_details"].items()):
            table.add_row(name, p["version"], p.get("format", ""), p.get("registry", ""), p.get("requested", ""))
        console.print(table)


@env.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@user_errors
def remove(name: str, yes: bool) -> None:
    """Delete environment NAME and all its generations."""
    envs.get_environment(name, create=False)
    if not yes:
        click.confirm(f"remove environment {name!r} and all its generations?", abort=True)
    root = envs.remove_environment(name)
    click.echo(f"removed environment {name!r} ({root})")


@env.command("history")
@env_option
@json_option
@user_errors
def history(env_name: str | None, as_json: bool) -> None:
    """The environment's generations, oldest first; the current one is marked."""
    from rich.console import Console
    from rich.table import Table

    e = envs.get_environment(env_name)
    now = e.generation
    rows = [{"generation": g.number, "current": g.number == now, "created": g.created, "action": g.action,
             "packs": {k: v["version"] for k, v in sorted(g.packs.items())}} for g in e.generations()]
    if as_json:
        _echo_json(rows)
        return
    table = Table("", "gen", "created", "action", "packs", title=f"environment {e.name}")
    for r in rows:
        table.add_row("*" if r["current"] else "", str(r["generation"]), _when(r["created"]), r["action"],
                      ", ".join(f"{k} {v}" for k, v in r["packs"].items()) or "-")
    Console().print(table)


@env.command("rollback")
@click.argument("generation", type=int, required=False)
@env_option
@user_errors
def rollback(generation: int | None, env_name: str | None) -> None:
    """Switch back to GENERATION (default: the one before the current one). Nothing is deleted."""
    e = envs.get_environment(env_name)
    before = e.generation
    gen = envs.rollback(e, generation)
    packs = ", ".join(f"{k} {v['version']}" for k, v in sorted(gen.packs.items())) or "no packs"
    click.echo(f"environment {e.name!r}: generation {before} -> {gen.number} ({packs})")


@env.command("prune")
@click.option("--keep", type=int, default=3, show_default=True, help="How many of the newest generations to keep.")
@env_option
@user_errors
def prune(keep: int, env_name: str | None) -> None:
    """Delete all but the newest generations and the current one; rollback can then no longer reach them."""
    e = envs.get_environment(env_name)
    gone = envs.prune(e, keep)
    click.echo(f"environment {e.name!r}: removed generation{'s' if len(gone) != 1 else ''} "
               f"{', '.join(map(str, gone))}" if gone else f"environment {e.name!r}: nothing to prune")
