"""``comfy trust`` and ``comfy untrust``: which packs run in Hearth's own process, which may use the network, and
whether a registry's publisher trust counts. Stored in ``trust.toml`` beside the registry config."""

from __future__ import annotations

import contextlib
import difflib
import importlib.metadata
import json
import re

import click
from rich.console import Console
from rich.table import Table

from hearth.cli.common import custom_nodes_folders, echo_json
from hearth.cli.main import UserError
from hearth.core.plugins import ENTRY_POINT_GROUP, FIRST_PARTY_DISTRIBUTIONS
from hearth.core.trust import canonical_pack_name
from hearth.registry.config import ConfigError
from hearth.registry.trust import TrustConfig, editing_trust, load_trust

# A pack name as a folder or distribution spells it: no path separators, nothing an option parser would take.
_PACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]*$")


def _check_names(packs: tuple[str, ...]) -> list[str]:
    for pack in packs:
        if not _PACK_NAME.match(pack) or pack != pack.strip():
            raise UserError(f"{pack!r} is not a pack name: use the name `comfy plugins` shows (letters, digits, "
                            f"'.', '_', '-'; no '/')")
    return list(dict.fromkeys(packs))


def known_packs() -> dict[str, str]:
    """Canonical name -> a name as shown, for every pack this machine knows: this Python's Hearth-format packs,
    the ComfyUI packs of the default custom-node folders, and every environment's installed packs."""
    known: dict[str, str] = {}

    def add(name: str) -> None:
        if name:
            known.setdefault(canonical_pack_name(name), name)

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None:  # the distribution's name first: the name the pack is installed by
            add(ep.dist.metadata["Name"] or "")
        add(ep.name)
    with contextlib.suppress(UserError, OSError):
        for folder in custom_nodes_folders(()):
            for entry in folder.iterdir() if folder.is_dir() else ():
                if not entry.name.startswith((".", "__")):
                    add(entry.stem if entry.suffix == ".py" else entry.name)
    with contextlib.suppress(Exception):  # a broken environment must not stop `comfy trust`
        from hearth.registry.envs import list_environments

        for env in list_environments():
            with contextlib.suppress(Exception):
                for name, info in env.current().packs.items():
                    add(name)
                    add(str(info.get("folder") or "") if isinstance(info, dict) else "")
    return known


def layered_packs() -> dict[str, str]:
    """Canonical pack name (its id and its folder) -> the environment where it has its own dependency layer."""
    layered: dict[str, str] = {}
    with contextlib.suppress(Exception):  # a broken environment must not stop `comfy trust`
        from hearth.registry.envs import list_environments

        for env in list_environments():
            with contextlib.suppress(Exception):
                current = env.current()
                folders = set(json.loads((current.path / "layers.json").read_text(encoding="utf-8")))
                names = folders | {name for name, info in current.packs.items()
                                   if isinstance(info, dict) and info.get("folder") in folders}
                for name in names:
                    layered.setdefault(canonical_pack_name(name), env.name)
    return layered


def _first_party(pack: str) -> bool:
    name = canonical_pack_name(pack)
    return name in FIRST_PARTY_DISTRIBUTIONS or f"hearth-{name}" in FIRST_PARTY_DISTRIBUTIONS


def _warn_unknown(packs: list[str], network: bool) -> None:
    known = known_packs()
    for pack in packs:
        if canonical_pack_name(pack) in known:
            continue
        close = difflib.get_close_matches(canonical_pack_name(pack), list(known), n=1, cutoff=0.75)
        hint = f" (did you mean {known[close[0]]!r}?)" if close else ""
        then = "its pack host may use the network" if network else "it will run in-process"
        click.echo(f"warning: no installed pack is named {pack!r}{hint}; recorded anyway: {then} once installed",
                   err=True)


def _show(config: TrustConfig, as_json: bool) -> None:
    if as_json:
        echo_json({"file": str(config.path), "trusted": sorted(config.trusted), "network": sorted(config.network),
                   "publishers": config.publishers})
        return
    console = Console()
    names = sorted(config.trusted | config.network)
    if names:
        table = Table("pack", "runs", "network")
        for name in names:
            table.add_row(name, "in-process" if name in config.trusted else "pack host",
                          "allowed" if name in config.network else "")
        console.print(table)
    else:
        console.print("no pack is trusted: every pack but Hearth's own runs in a pack host "
                      "(under --isolation untrusted)", highlight=False)
    console.print(f"registry publisher trust: {'on' if config.publishers else 'off'} "
                  f"(comfy trust --publishers on|off)", highlight=False)
    console.print(f"file: {config.path}", highlight=False, soft_wrap=True)


@click.command()
@click.argument("packs", nargs=-1, metavar="[PACK]...")
@click.option("--network", is_flag=True,
              help="Allow PACK's pack host the network (an API node) instead of trusting PACK: it still runs "
                   "isolated, with no secrets, but may connect out.")
@click.option("--publishers", type=click.Choice(["on", "off"]), default=None,
              help="on: also run in-process the packs whose publisher their registry's admins mark trusted (as "
                   "recorded when the pack was installed); off: only the packs you trust by name.")
@click.option("--list", "list_", is_flag=True, help="Show the trusted packs, the packs allowed the network and "
                                                   "the publisher setting (the default without PACK).")
@click.option("--json", "as_json", is_flag=True, help="With --list: print them as JSON.")
def trust(packs: tuple[str, ...], network: bool, publishers: str | None, list_: bool, as_json: bool) -> None:
    """Trust PACK to run in Hearth's own process, with your rights, under --isolation untrusted (the default).

    \b
    comfy trust PACK             PACK runs in-process (no pack host)
    comfy trust PACK --network   PACK stays isolated, but its pack host may use the network
    comfy trust --publishers on  packs of publishers their registry trusts run in-process too
    comfy trust [--list]         show what is trusted (--json for machines)

    A name no installed pack has is trusted anyway, with a warning: you may trust a pack before installing it.
    Take trust back with `comfy untrust PACK`.
    """
    names = _check_names(packs)
    if network and not names:
        raise UserError("--network needs the pack to allow: comfy trust PACK --network")
    if as_json and (names or publishers):
        raise UserError("--json goes with --list (comfy trust --list --json)")
    try:
        if not names and publishers is None:
            _show(load_trust(), as_json)
            return
        if list_:
            raise UserError("--list shows the trust list; give it alone (comfy trust --list)")
        with editing_trust() as config:
            for name in names:
                config.trust(name, network=network)
            if publishers is not None:
                config.publishers = publishers == "on"
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if names:
        _warn_unknown(names, network)
    layered = layered_packs() if names and not network else {}
    for name in names:
        if _first_party(name) and not network:
            click.echo(f"{name} is one of Hearth's own plugins: it always runs in-process")
        elif network:
            click.echo(f"{name} may use the network from its pack host (it still runs isolated unless trusted)")
        else:
            click.echo(f"trusted {name}: it runs in Hearth's process, with your rights")
            env_name = layered.get(canonical_pack_name(name))
            if env_name is not None:
                click.echo(f"note: {name} has its own dependency layer in environment {env_name!r}: there it runs "
                           f"in a pack host even when trusted (its packages cannot join Hearth's process)", err=True)
    if publishers is not None:
        click.echo("packs whose publisher their registry trusts now run in-process" if publishers == "on" else
                   "a registry's publisher trust no longer counts: only the packs you trust run in-process")


@click.command()
@click.argument("packs", nargs=-1, required=True, metavar="PACK...")
@click.option("--network", is_flag=True, help="Only take back PACK's network access; keep trusting it.")
def untrust(packs: tuple[str, ...], network: bool) -> None:
    """Stop trusting PACK: under --isolation untrusted it runs in a pack host again, without the network."""
    names = _check_names(packs)
    changed: dict[str, bool] = {}
    try:
        with editing_trust() as config:
            for name in names:
                changed[name] = config.untrust(name, network_only=network)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    for name, had in changed.items():
        if not had:
            click.echo(f"{name} was not {'allowed the network' if network else 'trusted'}; nothing changed "
                       f"(see comfy trust --list)", err=True)
        elif network:
            click.echo(f"{name} no longer has the network")
        else:
            click.echo(f"{name} is no longer trusted: it runs in a pack host, without the network")
