"""Options and helpers shared by the commands that load plugins (run, nodes, plugins, and later serve)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from cli.main import UserError
from core.plugins import PluginManager, load_plugins


def custom_nodes_option(fn: Any) -> Any:
    return click.option(
        "--custom-nodes", "custom_nodes", multiple=True, type=click.Path(file_okay=False, path_type=Path),
        help="Folder of ComfyUI-format packs to load (repeatable; default ./custom_nodes when it exists, "
             "or $HEARTH_CUSTOM_NODES).")(fn)


def custom_nodes_folders(given: tuple[Path, ...]) -> list[Path]:
    if given:
        for folder in given:
            if not folder.is_dir():
                raise UserError(f"--custom-nodes {folder}: no such folder")
        return list(given)
    env = os.environ.get("HEARTH_CUSTOM_NODES")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    default = Path("custom_nodes")
    return [default] if default.is_dir() else []


def plugins_for(custom_nodes: tuple[Path, ...], quiet: bool = False) -> PluginManager:
    manager = load_plugins(custom_nodes=custom_nodes_folders(custom_nodes))
    if not quiet:
        for record in manager.records.values():
            if record.error:
                click.echo(f"warning: plugin {record.name} not loaded: {record.error} (see `comfy plugins`)", err=True)
    return manager


def read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate the BOM some Windows editors write
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a workflow file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
