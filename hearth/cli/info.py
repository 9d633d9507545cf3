"""``comfy nodes`` and ``comfy plugins``: what the loaded plugins provide, as tables or JSON."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import custom_nodes_option, echo_json, env_option, runtime_for


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print node info in the shape of ComfyUI's /object_info.")
@custom_nodes_option
@env_option
def nodes(as_json: bool, custom_nodes: tuple[Path, ...], env_name: str | None) -> None:
    """List every node type the loaded plugins provide."""
    runtime = runtime_for(custom_nodes, env_name)
    registry = runtime.nodes
    info = runtime.call(registry.object_info)  # INPUT_TYPES list the Runtime's model folders and samplers
    if as_json:
        echo_json(info)
        return
    table = Table()
    table.add_column("node", no_wrap=True)  # whole names, so `comfy nodes | grep NAME` finds them at 80 columns
    for column in ("category", "inputs", "outputs", "plugin"):
        table.add_column(column)
    for name, entry in info.items():
        required = list(entry["input"].get("required", {}))
        optional = [f"{n}?" for n in entry["input"].get("optional", {})]
        table.add_row(name, entry["category"], ", ".join(required + optional), ", ".join(entry["output"]),
                      registry[name].plugin)
    Console().print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable records.")
@custom_nodes_option
@env_option
def plugins(as_json: bool, custom_nodes: tuple[Path, ...], env_name: str | None) -> None:
    """List loaded plugins with their tier, node count, any load error, and the ComfyUI internals a custom-node
    pack uses that Hearth lacks (its nodes that touch them fail; the rest work)."""
    runtime = runtime_for(custom_nodes, env_name, quiet=True)
    manager = runtime.plugins
    runtime.nodes  # noqa: B018 - building the registry counts nodes per plugin and surfaces name clashes
    records = sorted(manager.records.values(), key=lambda r: (r.tier != "essential", r.tier != "default", r.name))
    # Recorded as packs import them; names a pack reaches only inside a node show up once that node has run.
    missing = manager.missing_internals()
    if as_json:
        echo_json({"plugins": [{**r.as_dict(), "missing_internals": missing.get(r.name, []) if r.kind == "comfyui"
                                else []} for r in records],
                   "collisions": [c.as_dict() for c in manager.collisions], "warnings": manager.warnings})
        return
    table = Table("plugin", "version", "tier", "kind", "nodes", "error", "missing internals")
    for record in records:
        lacks = missing.get(record.name, []) if record.kind == "comfyui" else []
        table.add_row(record.name, record.version, record.tier, record.kind, str(record.node_count),
                      record.error or "", ", ".join(lacks))
    console = Console()
    console.print(table)
    if manager.collisions:  # one node name, several plugins: who provides it, who was refused
        clashes = Table("node", "provided by", "refused", title="node name collisions")
        for c in manager.collisions:
            by = f"{c.provider} (overrides {c.overridden}: HEARTH_ALLOW_OVERRIDE)" if c.overridden else c.provider
            clashes.add_row(c.node, by, ", ".join(c.refused))
        console.print(clashes)
    # What a pack's load skipped or could not run (a failing prestartup script, a node class left out...).
    for record in records:
        for note in record.notes:
            console.print(f"[cyan]note:[/cyan] {escape(record.name)}: {escape(note)}", highlight=False, soft_wrap=True)
    for warning in manager.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
