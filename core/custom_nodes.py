"""The ComfyUI custom-node loader (a default-tier plugin): every pack under ``custom_nodes/`` becomes a plugin.

A pack is a module (``pack.py``) or package (``pack/__init__.py``) exporting ``NODE_CLASS_MAPPINGS`` and
optionally ``NODE_DISPLAY_NAME_MAPPINGS`` and ``WEB_DIRECTORY``. Packs load in name order, each under its own
module name as ComfyUI loads them; one that fails to import is recorded with its traceback and the rest load.
Folders ending in ``.disabled`` and hidden folders are skipped.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core import comfy_compat
from core.hookspecs import hookimpl
from core.nodes import NodeDefinition
from core.plugins import PluginRecord


class CustomNodesLoader:
    """Loads ComfyUI-format packs from folders and contributes their nodes."""

    def __init__(self, folders: Sequence[Path], wanted: Callable[[str], bool] = lambda name: True) -> None:
        self.folders = [Path(f) for f in folders]
        self.wanted = wanted
        self.definitions: list[NodeDefinition] = []
        self.web_directories: dict[str, Path] = {}

    def candidates(self) -> list[tuple[str, Path]]:
        found = []
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir(), key=lambda p: p.name):
                name = path.stem if path.is_file() else path.name
                if path.name.startswith((".", "__")) or path.name.endswith(".disabled"):
                    continue
                if path.is_file() and path.suffix == ".py":
                    found.append((name, path))
                elif path.is_dir() and (path / "__init__.py").is_file():
                    found.append((name, path))
        return found

    def load(self) -> list[PluginRecord]:
        records = []
        for name, path in self.candidates():
            if not self.wanted(name):
                continue
            # Packs import ComfyUI's internals (folder_paths, comfy.utils...) at load and inside their nodes.
            comfy_compat.install(self.folders)
            comfy_compat.register_pack(name, path)
            record = PluginRecord(name, "installed", module=str(path), kind="comfyui")
            records.append(record)
            try:
                module = self._import(name, path)
            except BaseException as exc:  # noqa: BLE001 - a pack's import failure must not stop the others
                if isinstance(exc, KeyboardInterrupt):
                    raise
                record.error = f"failed to import: {type(exc).__name__}: {exc}"
                record.traceback = traceback.format_exc()
                continue
            record.version = str(getattr(module, "__version__", "") or "")
            mappings = getattr(module, "NODE_CLASS_MAPPINGS", None)
            if not isinstance(mappings, dict):
                record.notes.append("no NODE_CLASS_MAPPINGS: the pack defines no nodes")
                continue
            display = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None) or {}
            for node_name, cls in mappings.items():
                try:
                    self.definitions.append(NodeDefinition(node_name, cls, display.get(node_name), plugin=name,
                                                           python_module=f"custom_nodes.{name}"))
                except Exception as exc:
                    record.notes.append(f"node {node_name!r} skipped: {exc}")
            web = getattr(module, "WEB_DIRECTORY", None)
            if web:
                base = path if path.is_dir() else path.parent
                self.web_directories[name] = (base / web).resolve()
        return records

    @staticmethod
    def _import(name: str, path: Path) -> Any:
        # As ComfyUI does, the module is named after the pack's full path, so a pack called "email" or "utils"
        # cannot shadow (or be shadowed by) an installed module of that name.
        name = str(path.resolve().with_suffix("") if path.is_file() else path.resolve()).replace(".", "_x_")
        if path.is_dir():
            spec = importlib.util.spec_from_file_location(name, path / "__init__.py",
                                                          submodule_search_locations=[str(path)])
        else:
            spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    @hookimpl
    def register_nodes(self) -> list[NodeDefinition]:
        return list(self.definitions)
