"""``comfy node scan``: verify a node pack (folder or archive) the way the registry will, before publishing it."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hearth.sandbox import ArchiveUnreadable, ImportLimits, Report, verify

EXIT_CODES = {"pass": 0, "flag": 1, "reject": 2}
# Said with every result: the scan ranks what a reviewer should read first; it does not prove a pack safe.
TRIAGE_NOTE = ("The scan is a triage aid for reviewers: it recognises common shapes of hidden or harmful code, and "
               "code written to avoid them can pass. PASS means nothing was recognised, not that the pack is safe "
               "(docs/scan.md).")
_VERDICT_STYLE = {"pass": "bold green", "flag": "bold yellow", "reject": "bold red"}
_SEVERITY_STYLE = {"low": "dim", "medium": "yellow", "high": "red", "critical": "bold red"}


@click.command("scan")
@click.argument("target", metavar="PATH_OR_ARCHIVE", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-import", is_flag=True, help="Skip the isolated import: archive and static checks only.")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Seconds the isolated import may take.")
def scan(target: Path, as_json: bool, no_import: bool, timeout: float) -> None:
    """Check a node pack for unsafe archive contents, risky code and what its import does.

    Prints the verdict (pass, flag or reject) and the findings; exit code 0 for pass, 1 for flag, 2 for reject.
    The scan is a triage aid for reviewers, not a proof of safety: PASS means nothing was recognised.
    """
    from hearth.cli.main import (
        UserError,  # here, not at the top: hearth.cli.main imports this module while it loads
    )

    if not target.exists():
        raise UserError(f"{target}: no such file or folder")
    limits = ImportLimits(wall_seconds=timeout, cpu_seconds=max(1, int(timeout)))
    try:
        report = verify(target, isolate_import=not no_import, import_limits=limits)
    except ArchiveUnreadable as exc:
        raise UserError(str(exc)) from None
    except PermissionError as exc:
        raise UserError(f"{exc.filename or target}: permission denied") from None
    if as_json:
        click.echo(json.dumps(dict(report.to_dict(), note=TRIAGE_NOTE), indent=2))
    else:
        _print(report, target, imported=not no_import)
    code = EXIT_CODES[report.verdict]
    if code:
        # SystemExit rather than ctx.exit: `comfy`'s main() runs click with standalone_mode=False, which turns
        # ctx.exit's code into a return value it does not pass on.
        raise SystemExit(code)


def _print(report: Report, target: Path, imported: bool) -> None:
    console = Console(highlight=False)
    verdict = report.verdict
    console.print(f"[{_VERDICT_STYLE[verdict]}]{verdict.upper()}[/] {escape(str(target))}: "
                  f"{len(report.findings)} finding(s), {len(report.nodes)} node(s)")
    if report.findings:
        table = Table(show_lines=False, expand=False)
        for column in ("severity", "rule", "where", "finding"):
            table.add_column(column, overflow="fold")
        for f in report.findings:
            text = escape(f.message) + (f"\n[dim]{escape(f.snippet)}[/]" if f.snippet and f.snippet != f.path else "")
            table.add_row(f"[{_SEVERITY_STYLE[f.severity]}]{f.severity}[/]", f.rule, escape(f.location), text)
        console.print(table)
    if report.nodes:
        table = Table(title="nodes", title_justify="left")
        for column in ("name", "kind", "category", "inputs", "outputs"):
            table.add_column(column, overflow="fold")
        for node in report.nodes:
            inputs = ", ".join(f"{k}: {v}" for section in ("required", "optional")
                               for k, v in node["inputs"].get(section, {}).items())
            table.add_row(escape(node["name"]), node["kind"], escape(node["category"]), escape(inputs),
                          escape(", ".join(node["outputs"])))
        console.print(table)
    if not imported:
        console.print("[dim]isolated import skipped (--no-import): nodes not listed[/]")
    elif report.isolation.get("available") is False:
        console.print(f"[yellow]not imported: {escape(str(report.isolation.get('reason')))}[/]")
    console.print(f"[dim]{escape(TRIAGE_NOTE)}[/]")
