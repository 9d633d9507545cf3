"""``comfy search QUERY`` and ``comfy info PACK``: what the configured registries offer, in priority order."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import echo_json
from hearth.cli.main import UserError
from hearth.registry.client import RegistryClient, RegistryError
from hearth.registry.config import (
    ConfigError,
    Index,
    PackNotFound,
    indexes_in_priority,
    load_config,
    source_for_pack,
)


def registry_option(fn: Any) -> Any:
    return click.option("--registry", "registry_url", metavar="URL",
                        help="Use only this registry (default: $COMFY_REGISTRY_URL, else every registry in the "
                             "config file, highest priority first).")(fn)


def configured_indexes(registry_url: str | None) -> list[Index]:
    try:
        return indexes_in_priority(load_config(), registry_url)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@click.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200),
              help="Most results to ask of each registry.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@registry_option
def search(query: tuple[str, ...], limit: int, as_json: bool, registry_url: str | None) -> None:
    """Find packs by id, name, description, publisher or node class, on every configured registry."""
    text = " ".join(query).strip()
    if not text:
        raise UserError("search: give words to look for, for example `comfy search upscale`")
    indexes = configured_indexes(registry_url)
    results: list[dict] = []
    hidden: list[dict] = []
    owner: dict[str, str] = {}  # pack key -> the registry install takes it from
    clients = [RegistryClient(r.url, r.token) for r in indexes]
    try:
        for i, client in enumerate(clients):
            for pack in client.search(text, limit):
                key = _key(pack["id"])
                if key in owner:
                    continue
                # A name a higher-priority registry holds is never installed from this one, even when that
                # registry's pack did not match the query: show it as hidden, not as a result.
                holder = next((c.url for c in clients[:i] if c.pack_details(pack["id"]) is not None), None)
                if holder is not None:
                    owner[key] = holder
                    hidden.append({"id": pack["id"], "registry": client.url, "held_by": holder})
                    continue
                owner[key] = client.url
                results.append({**pack, "registry": client.url})
    except RegistryError as exc:
        raise UserError(str(exc)) from None
    finally:
        for client in clients:
            client.__exit__()
    if as_json:
        echo_json({"query": text, "registries": [r.url for r in indexes], "results": results,
                   "hidden": hidden})
        return
    console = Console(highlight=False)
    if not results:
        console.print(f"no packs match {escape(text)!r} on {', '.join(r.url for r in indexes)}")
    else:
        table = Table("pack", "version", "publisher", "downloads", "description")
        if len(indexes) > 1:
            table.add_column("registry")
        for pack in results:
            row = [escape(pack["id"]), escape(pack.get("latest_version") or "-"), escape(pack.get("publisher") or ""),
                   str(pack.get("downloads") or 0), escape(_short(pack.get("description") or ""))]
            if len(indexes) > 1:
                row.append(escape(pack["registry"]))
            table.add_row(*row)
        console.print(table)
    for item in hidden:
        console.print(f"[dim]{escape(item['id'])} on {escape(item['registry'])} is hidden: the same name on "
                      f"{escape(item['held_by'])} takes precedence[/dim]")


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


@click.command("info")
@click.argument("pack")
@click.option("--json", "as_json", is_flag=True, help="Print the pack's details as JSON.")
@registry_option
def info(pack: str, as_json: bool, registry_url: str | None) -> None:
    """Show a pack from the highest-priority registry that has it: versions, status, node classes."""
    indexes = configured_indexes(registry_url)
    clients = {r.url: RegistryClient(r.url, r.token) for r in indexes}
    try:
        found = source_for_pack(pack, indexes, lambda reg, name: clients[reg.url].pack_details(name))
    except RegistryError as exc:
        raise UserError(str(exc)) from None
    finally:
        for client in clients.values():
            client.__exit__()
    if isinstance(found, PackNotFound):
        raise UserError(f"{found.message}; try `comfy search {pack}`")
    index, detail = found
    if as_json:
        echo_json({"registry": index.url, **detail})
        return
    _print_detail(index.url, detail)


def _print_detail(url: str, d: dict) -> None:
    console = Console(highlight=False)
    versions = d.get("versions") or []
    latest = d.get("latest_version")
    head = f"[bold]{escape(d.get('id', ''))}[/bold]"
    if d.get("name") and d["name"] != d.get("id"):
        head += f" ({escape(d['name'])})"
    console.print(f"{head} {escape(latest or 'no installable version')} by {escape(d.get('publisher') or '?')}")
    if d.get("description"):
        console.print(escape(d["description"]))
    facts = [("registry", url), ("license", d.get("license")), ("repository", d.get("repository")),
             ("downloads", str(d.get("downloads", 0)))]
    trust = d.get("publisher_trust")
    if trust:  # what `comfy trust --publishers on` would go by (Hearth registries only)
        facts.append(("publisher", f"{'trusted' if trust == 'trusted' else 'not trusted'} by this registry's admins"))
    current = next((v for v in versions if v.get("version") == latest), None)
    if current is not None:
        deps = current.get("dependencies") or []
        facts.append(("requires", ", ".join(deps) if deps else "nothing"))
        classes = [n["name"] for n in current.get("node_classes") or []]
        if classes:
            facts.append(("node classes", ", ".join(classes)))
    for label, value in facts:
        if value:
            console.print(f"  {label:13} {escape(str(value))}")
    if versions:
        table = Table("version", "status", "uploaded", "nodes", "sha256")
        for v in versions:
            status = v.get("status") or ""
            if v.get("yanked"):
                status += " (yanked" + (f": {v['yanked_reason']}" if v.get("yanked_reason") else "") + ")"
            table.add_row(escape(v.get("version") or ""), escape(status), escape((v.get("uploaded_at") or "")[:10]),
                          str(len(v.get("node_classes") or [])), (v.get("sha256") or "")[:12])
        console.print(table)
