"""``comfy nodes`` and ``comfy plugins``: what the loaded plugins provide, as tables or JSON."""

from __future__ import annotations

from pathlib import Path

import click

from hearth.cli.catalogued import build_now, keep, node_catalogue
from hearth.cli.common import JsonStdout, custom_nodes_option, env_option, isolation_option, runtime_for
from hearth.core.node_registry import NodeRegistry
from hearth.core.plugins import PluginRecord
from hearth.core.runtime import Runtime
from hearth.core.trust import TrustPolicy, canonical_pack_name


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print node info in the shape of ComfyUI's /object_info; a node whose INPUT_TYPES fails has its "
                   "class's own details, no inputs, and \"error\".")
@click.option("--build-catalogue", "build_lock", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="Only build the node catalogue, then remove this lock file (what `comfy run --check` starts in "
                   "the background when it finds the catalogue stale).")
@custom_nodes_option
@env_option
@isolation_option
def nodes(as_json: bool, build_lock: Path | None, custom_nodes: tuple[Path, ...], env_name: str | None,
          isolation: str | None) -> None:
    """List every node type the loaded plugins provide; one whose INPUT_TYPES fails is listed with its error (it
    cannot run, and the server's /object_info leaves it out, as ComfyUI's does).

    The answer comes from the node catalogue, a cache in $HEARTH_HOME/cache/catalogue (or $HEARTH_CACHE_DIR) that
    is rebuilt by loading every plugin whenever a pack is installed, removed or edited; model file lists and the
    input folder are read afresh each time. HEARTH_CATALOGUE=off loads the plugins every time instead. `comfy run
    --check` does not wait for a rebuild: it checks without the catalogue while a background process rebuilds it
    (HEARTH_CATALOGUE_BACKGROUND=off: no background rebuild)."""
    if build_lock is not None:
        build_now(lambda: runtime_for(custom_nodes, env_name, quiet=True, isolation=isolation, load=False),
                  build_lock)
        return
    with JsonStdout(as_json) as out:  # with --json, what packs print while loading goes to stderr
        runtime = runtime_for(custom_nodes, env_name, isolation=isolation, load=False)
        catalogue = node_catalogue(runtime)
        # INPUT_TYPES list the Runtime's model folders: the catalogue puts in today's lists, re-reads dynamic nodes.
        if as_json and catalogue is not None:
            document = catalogue.object_info_json(runtime)
            if document is not None:
                keep(catalogue, runtime)
                out.emit_text(document)
                return
        info = catalogue.object_info(runtime) if catalogue is not None else None
        if info is None:  # catalogues off, or a dynamic node only the loaded plugins can read
            registry = runtime.nodes
            errors: dict[str, str] = {}
            found = runtime.call(registry.object_info, errors)
            info = {name: found[name] if name in found else registry[name].broken_info(errors[name])
                    for name in registry}
            plugin_of = {name: registry[name].plugin for name in registry}
        else:
            plugin_of = {name: node.plugin for name, node in catalogue.nodes.items()}
            keep(catalogue, runtime)
        errors = {name: entry["error"] for name, entry in info.items() if "error" in entry}
        if as_json:
            out.emit(info)
            return
    from rich.console import Console  # deferred, as below: `--json` needs no tables
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    table.add_column("node", no_wrap=True)  # whole names, so `comfy nodes | grep NAME` finds them at 80 columns
    for column in ("category", "inputs", "outputs", "plugin"):
        table.add_column(column)
    for name, entry in info.items():
        required = list(entry["input"].get("required", {}))
        optional = [f"{n}?" for n in entry["input"].get("optional", {})]
        inputs = ", ".join(required + optional)
        if "error" in entry:
            inputs = f"[red]error: {escape(entry['error'])}[/red]"
        table.add_row(name, escape(entry["category"]), inputs, ", ".join(entry["output"]), plugin_of[name])
    Console().print(table)
    if errors:
        click.echo(f"warning: {len(errors)} node(s) cannot run, each for the error shown: {', '.join(errors)}",
                   err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable records.")
@custom_nodes_option
@env_option
@isolation_option
def plugins(as_json: bool, custom_nodes: tuple[Path, ...], env_name: str | None, isolation: str | None) -> None:
    """List loaded plugins with their tier, node count, where each runs and why, any load error, and the ComfyUI
    internals a custom-node pack uses that Hearth lacks (its nodes that touch them fail; the rest work).

    Where: "in-process" (in Hearth's own process, with your rights) or "pack host" (an isolated process with no
    network, no secrets and a read-only view of the machine); "network: allowed" marks a pack you allowed the
    network (comfy trust PACK --network). Why: "first-party plugin", "trusted by you (comfy trust)", "publisher
    trusted by REGISTRY", "not trusted", "--isolation all", "--isolation off" or "has its own dependency layer".
    """
    with JsonStdout(as_json) as out:  # with --json, what packs print while loading goes to stderr
        runtime = runtime_for(custom_nodes, env_name, quiet=True, isolation=isolation, load=False)
        catalogue = node_catalogue(runtime, quiet=True)
        broken = catalogue.node_errors(runtime) if catalogue is not None else None
        if catalogue is not None and broken is not None:
            found, collisions = catalogue.plugin_records(), catalogue.node_collisions()
            missing, warnings = dict(catalogue.missing_internals), list(catalogue.warnings)
            keep(catalogue, runtime)
        else:  # catalogues off, or a dynamic node only the loaded plugins can read
            manager = runtime.plugins
            registry = runtime.nodes  # building the registry counts nodes per plugin and surfaces name clashes
            found, collisions, warnings = list(manager.records.values()), manager.collisions, manager.warnings
            # Recorded as packs import them; names a pack reaches only inside a node show up once that node has run.
            missing = manager.missing_internals()
            broken = node_errors_by_plugin(runtime, registry)
        records = sorted(found, key=lambda r: (r.tier != "essential", r.tier != "default", r.name))
        trust = runtime.options.trust
        if as_json:
            out.emit({"plugins": [{**r.as_dict(), "network": network_allowed(r, trust),
                                   "missing_internals": missing.get(r.name, []) if r.kind == "comfyui" else [],
                                   "node_errors": broken.get(r.name, {})}
                                  for r in records],
                      "isolation": trust.mode, "pack_hosts": pack_hosts(trust),
                      "collisions": [c.as_dict() for c in collisions], "warnings": warnings})
            return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    hosts = pack_hosts(trust)
    if hosts is None:
        can = ""
    elif hosts["available"]:
        can = "; pack hosts: available"
    else:
        can = f"; pack hosts: unavailable on this machine ({hosts['reason']})"
    table = Table(caption=escape(f"isolation: {trust.mode}{can} (--isolation, HEARTH_ISOLATION; comfy trust)"))
    table.add_column("plugin", no_wrap=True)  # whole names: `comfy plugins | grep NAME` and `comfy trust NAME`
    table.add_column("version")
    for column in ("tier", "kind"):  # one word each: a tier cut to "essen…" says nothing
        table.add_column(column, no_wrap=True, min_width=len("essential") if column == "tier" else len("comfyui"))
    table.add_column("nodes")
    table.add_column("runs (why)", min_width=14, overflow="fold")  # "in-process" / "pack host" must stay whole
    for column in ("error", "missing internals"):
        table.add_column(column)
    for record in records:
        lacks = missing.get(record.name, []) if record.kind == "comfyui" else []
        cannot = len(broken.get(record.name, {}))
        count = f"{record.node_count} ({cannot} cannot run)" if cannot else str(record.node_count)
        table.add_row(record.name, record.version, record.tier, record.kind, count,
                      escape(where(record, trust)), escape(record.error or ""), ", ".join(lacks))
    console = Console()
    console.print(table)
    if collisions:  # one node name, several plugins: who provides it, who was refused
        clashes = Table("node", "provided by", "refused", title="node name collisions")
        for c in collisions:
            by = f"{c.provider} (overrides {c.overridden}: HEARTH_ALLOW_OVERRIDE)" if c.overridden else c.provider
            clashes.add_row(c.node, by, ", ".join(c.refused))
        console.print(clashes)
    # What a pack's load skipped or could not run (a failing prestartup script, a node class left out...).
    for record in records:
        for note in record.notes:
            console.print(f"[cyan]note:[/cyan] {escape(record.name)}: {escape(note)}", highlight=False, soft_wrap=True)
        for node, problem in broken.get(record.name, {}).items():
            console.print(f"[yellow]warning:[/yellow] {escape(record.name)}: node {escape(node)} cannot run: "
                          f"{escape(problem)}", highlight=False, soft_wrap=True)
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def node_errors_by_plugin(runtime: Runtime, registry: NodeRegistry) -> dict[str, dict[str, str]]:
    """``{plugin: {node: what failed}}`` for the nodes whose ``INPUT_TYPES`` fails (read inside the Runtime, as
    validation reads it): listed, where ComfyUI's /object_info silently leaves them out."""
    found: dict[str, dict[str, str]] = {}
    for node, problem in runtime.call(registry.input_errors).items():
        found.setdefault(registry[node].plugin, {})[node] = problem
    return found


def network_allowed(record: PluginRecord, trust: TrustPolicy) -> bool:
    """Whether the user allowed this plugin the network by name (under its plugin or its distribution name)."""
    names = {canonical_pack_name(n) for n in (record.name, record.distribution) if n}
    return record.network or bool(names & trust.network)


def where(record: PluginRecord, trust: TrustPolicy) -> str:
    """``in-process: first-party plugin``, ``pack host: not trusted; network: allowed``, ``not loaded: ...``."""
    runs = record.placement or ("not loaded" if record.error else "")
    text = f"{runs}: {record.placement_why}" if runs and record.placement_why else runs
    if network_allowed(record, trust):
        text += ("; " if text else "") + "network: allowed"
    return text


def pack_hosts(trust: TrustPolicy) -> dict[str, object] | None:
    """Whether this machine can make pack hosts (``{"available", "reason"}``); ``None`` under --isolation off,
    where only packs with their own dependency layer need one and the probe is not worth a process."""
    if not trust.isolates:
        return None
    from hearth.sandbox.host import isolation_available  # probed once per process, in a throw-away child

    available, reason = isolation_available()
    return {"available": available, "reason": reason}
