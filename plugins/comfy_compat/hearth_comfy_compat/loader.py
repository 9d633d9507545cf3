"""The ComfyUI custom-node loader: every pack under ``custom_nodes/`` becomes a plugin of the installed tier.

A pack is a module (``pack.py``) or package (``pack/__init__.py``) exporting ``NODE_CLASS_MAPPINGS`` and
optionally ``NODE_DISPLAY_NAME_MAPPINGS`` and ``WEB_DIRECTORY`` -- or, written for ComfyUI's V3 API, a
``comfy_entrypoint()`` returning an extension whose ``get_node_list()`` names its nodes. Packs load in name order,
each under its own module name as ComfyUI loads them; one that fails to import is recorded with its traceback and
the rest load. Folders ending in ``.disabled`` and hidden folders are skipped.

As in ComfyUI, every pack folder's ``prestartup_script.py`` runs before the first pack loads (so one pack's early
setup is in place for all); one that fails is reported on its pack, which still loads.

Where each pack runs is the Runtime's trust policy's call (``hearth.core.trust``): in this process as above, or in
a pack host of its own (:mod:`hearth_comfy_compat.isolated`), whose nodes are registered as proxies. A pack with
its own dependency layer (``layers.json`` beside the ``custom_nodes`` folder, written by ``comfy install``) always
runs in a host, with the layer first on its path. Where the machine cannot isolate, a pack that must run isolated
is not loaded and its record says how to run it unisolated. Each record says where the pack runs and why.

The plugin manager gets a loader through the ``custom_nodes_for_folders`` hook (:mod:`hearth_comfy_compat.plugin`)
and registers it as the ``custom_nodes`` plugin: its ``register_nodes`` contributes the packs' nodes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import importlib.util
import inspect
import json
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hearth_comfy_compat as comfy_compat
from hearth.core.hookspecs import hookimpl
from hearth.core.nodes import NodeDefinition, NodeDefinitionError
from hearth.core.plugins import PluginRecord
from hearth.core.trust import IN_PROCESS, Placement, isolation_refusal
from hearth_comfy_compat import services

log = logging.getLogger("hearth.custom_nodes")
PRESTARTUP = "prestartup_script.py"
HOST_STARTS = 4  # pack hosts started at once while packs load


class CustomNodesLoader:
    """Loads ComfyUI-format packs from folders and contributes their nodes."""

    def __init__(self, folders: Sequence[Path], wanted: Callable[[str], bool] = lambda name: True) -> None:
        self.folders = [Path(f) for f in folders]
        self.wanted = wanted
        self.definitions: list[NodeDefinition] = []
        self.web_directories: dict[str, Path] = {}
        self.records: list[PluginRecord] = []
        self.isolated: dict[str, Any] = {}  # pack name -> its IsolatedPack (its host)

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

    def load(self, plugins: Any = None) -> list[PluginRecord]:
        """Load every wanted pack where the trust policy places it; ``plugins``: the manager loading them, which
        packs reading samplers or node classes at import are answered from (it is not the active one yet)."""
        wanted = [(name, path) for name, path in self.candidates() if self.wanted(name)]
        policy = _trust_policy(plugins)
        in_process, isolated, records = [], [], {}
        for name, path in wanted:
            layer = _layer_of(path)
            placement = policy.placement(name, own_layer=layer is not None) if policy is not None else None
            if placement is not None and placement.isolated:
                isolated.append((name, path, placement, layer))
            else:
                in_process.append((name, path))
                records[name] = placement
        with services.loading(plugins):
            loaded = {r.name: r for r in self._load(in_process)}
            for record in loaded.values():
                _place(record, records.get(record.name))
            loaded.update(self._load_isolated(isolated, plugins))
        self.records = [loaded[name] for name, _ in wanted if name in loaded]
        return self.records

    def load_packs(self, packs: Sequence[tuple[str, Path]], plugins: Any = None) -> list[PluginRecord]:
        """Import exactly ``packs`` in this process (a pack host's entry loads its one pack this way)."""
        with services.loading(plugins):
            self.records = self._load(list(packs))
        return self.records

    def _load_isolated(self, packs: list[tuple[str, Path, Any, Path | None]],
                       plugins: Any) -> dict[str, PluginRecord]:
        """Start each pack's host, import the pack in it and register its nodes as proxies. The hosts start side
        by side (each imports Hearth and the pack: seconds, mostly waiting on the disk and the interpreter)."""
        from hearth_comfy_compat import isolated
        from hearth_comfy_compat.pack_hosts import isolation_available

        if not packs:
            return {}
        records: dict[str, PluginRecord] = {}
        started: list[tuple[PluginRecord, Any]] = []
        available, reason = isolation_available(plugins)
        for name, path, placement, layer in packs:
            record = records[name] = PluginRecord(name, "installed", module=str(path), kind="comfyui")
            _place(record, placement)
            if not available:
                record.error = isolation_refusal(name, reason, own_layer=layer is not None)
                _not_placed(record)
                continue
            layout = isolated.PackLayout(name, path, network=bool(placement.network), layer=layer)
            started.append((record, isolated.IsolatedPack(layout, plugins)))
        with concurrent.futures.ThreadPoolExecutor(max(1, min(HOST_STARTS, len(started))),
                                                   thread_name_prefix="pack-host-start") as pool:
            # Each in a copy of this context: the pack's host reads the Runtime's folders as it starts.
            futures = [pool.submit(contextvars.copy_context().run, pack.describe) for _, pack in started]
            for (record, pack), future in zip(started, futures, strict=True):
                self._finish_isolated(record, pack, future)
        return records

    def _finish_isolated(self, record: PluginRecord, pack: Any, future: Any) -> None:
        path = Path(record.module)
        try:
            description = future.result()
        except Exception as exc:
            pack.close()
            record.error = f"failed to import in its pack host: {exc}"
            record.traceback = getattr(exc, "remote_traceback", None) or "".join(traceback.format_exception(exc))
            _not_placed(record)
            return
        self.isolated[record.name] = pack
        record.notes += [str(n) for n in description.get("notes") or ()]
        web = description.get("web_directory")
        if web:  # the host reports the folder; Hearth reads and serves its files, never the pack
            base = path if path.is_dir() else path.parent
            folder = Path(web).resolve()
            if folder.is_relative_to(base.resolve()):
                self.web_directories[record.name] = folder
            else:
                record.notes.append(f"WEB_DIRECTORY {web!r} resolves outside the pack; not served")
        definitions, notes = pack.definitions()
        record.notes += notes
        self.definitions += definitions

    def close(self) -> None:
        """Stop every pack host this loader started."""
        for pack in self.isolated.values():
            pack.close()

    def missing_internals(self) -> dict[str, list[str]]:
        """Pack name -> the ComfyUI internals it used that Hearth lacks (for ``comfy plugins``)."""
        names = {record.name for record in self.records}
        found = {pack: used for pack, used in comfy_compat.missing_names().items() if pack in names}
        for name, pack in self.isolated.items():  # recorded in their hosts
            used = pack.missing_internals()
            if used:
                found[name] = used
        return found

    def _load(self, wanted: list[tuple[str, Path]]) -> list[PluginRecord]:
        records = []
        if wanted:
            # Packs import ComfyUI's internals (folder_paths, comfy.utils...) at load and inside their nodes.
            comfy_compat.install(self.folders)
        startup_failures = self._run_prestartup_scripts(wanted)
        for name, path in wanted:
            comfy_compat.register_pack(name, path)
            record = PluginRecord(name, "installed", module=str(path), kind="comfyui")
            records.append(record)
            if name in startup_failures:
                record.notes.append(startup_failures[name])
            try:
                module = self._import(name, path)
            except BaseException as exc:  # noqa: BLE001 - a pack's import failure must not stop the others
                if isinstance(exc, KeyboardInterrupt):
                    raise
                record.error = f"failed to import: {type(exc).__name__}: {exc}"
                record.traceback = traceback.format_exc()
                continue
            record.version = str(getattr(module, "__version__", "") or "")
            web = getattr(module, "WEB_DIRECTORY", None)
            if web:  # served even for a pack without nodes: frontend-only packs are common
                base = path if path.is_dir() else path.parent
                folder = (base / str(web)).resolve()
                if folder.is_relative_to(base.resolve()):
                    self.web_directories[name] = folder
                else:  # the web server would hand out files from outside the pack
                    record.notes.append(f"WEB_DIRECTORY {str(web)!r} resolves outside the pack; not served")
            mappings = getattr(module, "NODE_CLASS_MAPPINGS", None)
            display = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None) or {}
            entrypoint = getattr(module, "comfy_entrypoint", None)
            if not isinstance(mappings, dict) and callable(entrypoint):
                try:
                    mappings, display = self._v3_nodes(name, entrypoint, record)
                except Exception as exc:
                    record.error = f"comfy_entrypoint failed: {type(exc).__name__}: {exc}"
                    record.traceback = traceback.format_exc()
                    continue
            if not isinstance(mappings, dict):
                record.notes.append("no NODE_CLASS_MAPPINGS: the pack defines no nodes")
                continue
            for node_name, cls in mappings.items():
                where = {"plugin": name, "python_module": f"custom_nodes.{name}"}
                try:
                    definition = NodeDefinition(node_name, _runnable_or_display_only(cls), display.get(node_name),
                                                **where)
                except Exception as exc:
                    # Listed with its error (comfy nodes, comfy plugins' node_errors), as a node whose
                    # INPUT_TYPES raises is, and running it names the error; never silently dropped.
                    definition = NodeDefinition(node_name, _unusable(node_name, cls, exc), display.get(node_name),
                                                **where)
                self.definitions.append(definition)
        self._add_web_directories_packs_registered(records, [path for _, path in wanted])
        return records

    def _add_web_directories_packs_registered(self, records: list[PluginRecord], packs: list[Path]) -> None:
        # Packs may register a web folder by writing nodes.EXTENSION_WEB_DIRS[name] = folder instead of
        # exporting WEB_DIRECTORY; the nodes module exists only if some pack imported it. Such a folder is
        # served only inside a pack's own folder: the web server would hand out whatever it names.
        nodes_module = sys.modules.get("hearth_comfy_compat.comfy_nodes")
        roots = [(path if path.is_dir() else path.parent).resolve() for path in packs]
        for name, folder in getattr(getattr(nodes_module, "EXTENSION_WEB_DIRS", None), "added", {}).items():
            resolved = Path(folder).resolve()
            if any(resolved.is_relative_to(root) for root in roots):
                self.web_directories.setdefault(name, resolved)
                continue
            log.warning("EXTENSION_WEB_DIRS[%r] = %s is outside every pack's folder; not served", name, folder)
            for record in records:
                if record.name == name or str(resolved) == record.module:
                    record.notes.append(f"EXTENSION_WEB_DIRS {str(folder)!r} is outside the pack; not served")

    def _run_prestartup_scripts(self, packs: Sequence[tuple[str, Path]]) -> dict[str, str]:
        """Run each pack folder's ``prestartup_script.py``; returns ``{pack: what failed}``."""
        failures = {}
        for name, path in packs:
            script = path / PRESTARTUP
            if not path.is_dir() or not script.is_file():
                continue
            comfy_compat.register_pack(name, path)
            module_name = str(script.resolve().with_suffix("")).replace(".", "_x_")
            try:
                spec = importlib.util.spec_from_file_location(module_name, script)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {script}")
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            except BaseException as exc:  # noqa: BLE001 - one pack's startup failure must not stop the others
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures[name] = f"{PRESTARTUP} failed: {type(exc).__name__}: {exc}"
                log.warning("pack %s: %s (the pack still loads)", name, failures[name])
                log.debug("traceback of %s's %s", name, PRESTARTUP, exc_info=True)
        return failures

    def _v3_nodes(self, pack: str, entrypoint: Any, record: PluginRecord) -> tuple[dict[str, type], dict[str, str]]:
        """The node classes of a V3 pack: ``comfy_entrypoint()`` -> extension -> ``get_node_list()``."""
        classes = _run_async(_extension_nodes(entrypoint))
        mappings: dict[str, type] = {}
        display: dict[str, str] = {}
        for cls in classes:
            try:
                schema = cls.GET_SCHEMA()
            except Exception as exc:
                record.notes.append(f"node class {getattr(cls, '__qualname__', cls)!r} skipped: "
                                    f"{type(exc).__name__}: {exc}")
                continue
            if schema.node_id in mappings:
                record.notes.append(f"node {schema.node_id!r} is listed twice by get_node_list(); the first is used")
                continue
            mappings[schema.node_id] = cls
            if schema.display_name:
                display[schema.node_id] = schema.display_name
        return mappings, display

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


NO_FUNCTION = "_hearth_node_without_function"


def _runnable_or_display_only(cls: Any) -> Any:
    """``cls``, or -- for a class with no ``FUNCTION`` method -- a subclass whose ``FUNCTION`` says so when run.

    ComfyUI registers such classes: packs ship display-only nodes (efficiency-nodes' "Manual XY Entry Info" and
    "Simple Eval Examples" show help text in a widget and have no outputs), which appear in the menu and
    ``/object_info`` and fail only if something makes them run. Hearth's node contract wants the method, so
    such a node gets one that raises, naming what the class lacks.
    """
    if not isinstance(cls, type) or not hasattr(cls, "INPUT_TYPES") or not hasattr(cls, "RETURN_TYPES"):
        return cls  # not a node class at all: the contract's error names what is missing
    function = getattr(cls, "FUNCTION", None)
    if isinstance(function, str) and callable(getattr(cls, function, None)):
        return cls
    lacks = f"FUNCTION={function!r} names no method" if function is not None else "no FUNCTION"

    def run(self: Any, **kwargs: Any) -> Any:
        raise TypeError(f"node class {cls.__qualname__} has {lacks}: it is shown, but it cannot run (as in ComfyUI)")

    return type(cls.__name__, (cls,), {"FUNCTION": NO_FUNCTION, NO_FUNCTION: run, "__module__": cls.__module__,
                                       "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})


def _unusable(node: str, cls: Any, exc: Exception) -> type:
    """A stand-in for a mapping entry that is no usable node class, whose ``INPUT_TYPES`` and run raise what is
    wrong with it: for a V3 ``ComfyNode`` whose ``define_schema()`` fails (it uses a V3 feature Hearth lacks, such
    as ``io.MatchType``), that exception -- the V1 attributes it computes from the schema then only look absent."""
    problem = _why_unusable(cls) or str(exc)
    problem = f"{node}: {problem}"

    def input_types(_cls: Any) -> Any:
        raise NodeDefinitionError(problem)

    def run(self: Any, **kwargs: Any) -> Any:
        raise NodeDefinitionError(problem)

    return type(str(getattr(cls, "__name__", node)), (), {
        "INPUT_TYPES": classmethod(input_types), "RETURN_TYPES": (), "FUNCTION": "run", "run": run,
        "CATEGORY": _safe_attr(cls, "CATEGORY"), "DESCRIPTION": problem,
        "__module__": str(getattr(cls, "__module__", __name__)), "__doc__": problem})


def _why_unusable(cls: Any) -> str | None:
    """The error behind a class that looks as if it lacked the node contract's attributes: a V3 schema that fails,
    or an attribute whose lookup raises more than "no such attribute" (a class built on a ComfyUI class Hearth
    lacks inherits a base whose every attribute names what is missing)."""
    if not isinstance(cls, type):
        return None
    try:
        schema = getattr(cls, "GET_SCHEMA", None)
    except Exception:  # noqa: BLE001 - asked again below, with its error kept
        schema = None
    if callable(schema):
        try:
            schema()
        except Exception as error:  # noqa: BLE001 - the pack's own failure, reported
            return f"define_schema() raised {type(error).__name__}: {error}"
    for attr in ("INPUT_TYPES", "RETURN_TYPES", "FUNCTION"):
        try:
            getattr(cls, attr)
        except Exception as error:  # noqa: BLE001 - reported
            if type(error) is not AttributeError:
                return f"{attr}: {type(error).__name__}: {error}"
    return None


def _safe_attr(cls: Any, name: str) -> str:
    try:
        value = getattr(cls, name, "")
    except Exception:  # noqa: BLE001 - a V3 class computes its V1 attributes from a schema that may fail
        return ""
    return value if isinstance(value, str) else ""


def _trust_policy(plugins: Any) -> Any:
    """The trust policy packs are placed by: the loading manager's, else the current Runtime's; ``None``: every
    pack in-process (a Runtime without a policy, as before isolation)."""
    policy = getattr(plugins, "trust", None)
    if policy is None:
        from hearth.core.runtime import current_runtime

        runtime = current_runtime()
        policy = getattr(runtime.options, "trust", None) if runtime is not None else None
    return policy


def _layer_of(path: Path) -> Path | None:
    """The pack's own dependency layer, from ``layers.json`` beside its ``custom_nodes`` folder, if it has one."""
    index = path.parent.parent / "layers.json"
    if not index.is_file():
        return None
    try:
        layers = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s cannot be read (%s); packs load without their own layers", index, exc)
        return None
    entry = layers.get(path.name) if isinstance(layers, dict) else None
    if not isinstance(entry, dict) or not entry.get("path"):
        return None
    layer = (index.parent / str(entry["path"])).resolve()
    if not layer.is_relative_to(index.parent.resolve()) or not layer.is_dir():
        log.warning("pack %s: its layer %s is missing or outside its environment; it loads without it",
                    path.name, entry["path"])
        return None
    return layer


def _place(record: PluginRecord, placement: Placement | None) -> None:
    """Record where the pack runs and why (``placement``: the policy's decision; ``None``: no policy)."""
    if placement is None:
        record.placement, record.placement_why, record.network = IN_PROCESS, "", False
    else:
        record.place(placement)


def _not_placed(record: PluginRecord) -> None:
    """A pack that was not loaded runs nowhere; its ``placement_why`` still says why it was to be isolated."""
    record.placement = ""


async def _extension_nodes(entrypoint: Any) -> list[type]:
    extension = entrypoint()
    if inspect.isawaitable(extension):
        extension = await extension
    if not callable(getattr(extension, "get_node_list", None)):
        raise TypeError(f"comfy_entrypoint() must return a ComfyExtension, got {type(extension).__name__}")
    on_load = getattr(extension, "on_load", None)
    if callable(on_load):
        loaded = on_load()
        if inspect.isawaitable(loaded):
            await loaded
    nodes = extension.get_node_list()
    if inspect.isawaitable(nodes):
        nodes = await nodes
    if not isinstance(nodes, (list, tuple)):
        raise TypeError(f"get_node_list() must return a list of node classes, got {type(nodes).__name__}")
    return list(nodes)


def _run_async(coroutine: Any) -> Any:
    """Run a pack's async entry point to completion, also when packs load from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the loading thread
            outcome["error"] = exc

    # In a copy of this context: the pack's code still sees the Runtime and the manager loading it.
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(run,), name="comfy-entrypoint")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
