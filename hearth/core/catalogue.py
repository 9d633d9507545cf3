"""The node catalogue: every node's definition, cached on disk, so listing and validating nodes imports no plugin.

What ``comfy nodes --json`` prints -- each node's ``/object_info`` entry (or its class's details and ``"error"``
when its ``INPUT_TYPES`` fails), the plugin that gave it, the model files its lists offer -- plus what ``comfy
plugins`` shows, is built once from a loaded Runtime (:func:`build_catalogue`) and written to the cache folder
(:func:`save_catalogue`). A later command with the same settings reads it back (:func:`load_catalogue`) when its
key still matches (:mod:`hearth.core.catalogue_key`: installed distributions and versions, custom-node files,
Hearth's version); a missing, stale or corrupt file gives ``None`` and is never trusted. Model file lists are put
in afresh on every load (:mod:`hearth.core.catalogue_probe`), and dynamic nodes are read again from their class::

    catalogue = load_catalogue(runtime.options, runtime.model_folders)
    if catalogue is None:
        catalogue = build_catalogue(runtime)   # loads every plugin
        save_catalogue(catalogue, runtime.options)
    info = catalogue.object_info(runtime)       # what `comfy nodes --json` prints

:func:`catalogue_for` does exactly that.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.core.catalogue_key import (
    FORMAT,
    RACY_NS,
    Fingerprint,
    cache_folder,
    catalogue_enabled,
    fingerprint,
    hearth_version,
)
from hearth.core.catalogue_probe import (
    ALWAYS,
    DYNAMIC_MARKER,
    FOLDER_STATES,
    Template,
    apply_templates,
    find_templates,
    folder_state,
    jsonable,
    probe_folders,
    probe_runtime,
    template_kinds,
)
from hearth.core.model_folders import ModelFolders
from hearth.core.nodes import NodeDefinition, NodeDefinitionError

if TYPE_CHECKING:
    from hearth.core.node_registry import NodeRegistry
    from hearth.core.plugins import NodeCollision, PluginRecord
    from hearth.core.runtime import Runtime, RuntimeOptions

log = logging.getLogger("hearth.catalogue")


class CatalogueMiss(RuntimeError):
    """A node's definition cannot come from the catalogue alone (its class is not importable by name): the
    caller loads the plugins and asks their registry."""


@dataclass
class CatalogueNode:
    """One node type as the catalogue keeps it.

    :param info: its ``comfy nodes --json`` entry (``/object_info`` shape; with ``"error"`` when broken), the
        model lists as of the last load.
    :param plugin: the plugin that provides it.
    :param source: ``module:qualname`` of its class, for reading a dynamic node again; ``""`` when the class
        cannot be imported by name (a ComfyUI pack's module).
    :param depends: what its ``INPUT_TYPES`` reads besides the model lists (see
        :mod:`hearth.core.catalogue_probe`): ``"input"``, ``"output"``, ``"models"`` folders, or ``"always"``
        (anything: read it every time); empty for a node whose definition is fixed.
    :param state: the :func:`folder_state` of the folders in ``depends`` when ``info`` was read.
    :param origin: the file of ``source``'s module: the class is imported by name only from that file.
    :param text: ``info`` as ``comfy nodes --json`` writes it one level deep (:func:`_fragment`), so the listing
        is written without encoding 300 entries again (Python's indenting encoder is the slow one).
    :param needs_class: validating it needs the class itself (``VALIDATE_INPUTS``, type objects with comparison
        rules of their own, inputs or outputs the frontend adds), not just its ``info``.
    :param templates: where its ``info`` holds model lists (JSON path, list with sentinels).
    """

    info: dict[str, Any]
    plugin: str
    source: str = ""
    depends: list[str] = field(default_factory=list)
    needs_class: bool = False
    templates: list[Template] = field(default_factory=list)
    state: str = ""
    text: str = ""
    origin: str = ""

    @property
    def dynamic(self) -> bool:
        """Its ``INPUT_TYPES`` reads state that may change between calls (``info`` is what it said last)."""
        return bool(self.depends)

    @property
    def broken(self) -> bool:
        """Its ``INPUT_TYPES`` failed at the last read (``info["error"]`` says how)."""
        return "error" in self.info

    def as_dict(self) -> dict[str, Any]:
        return {"info": self.info, "plugin": self.plugin, "source": self.source, "depends": self.depends,
                "needs_class": self.needs_class, "templates": [[p, t] for p, t in self.templates],
                "state": self.state, "text": self.text, "origin": self.origin}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CatalogueNode:
        return cls(dict(data["info"]), str(data["plugin"]), str(data["source"]), [str(d) for d in data["depends"]],
                   bool(data["needs_class"]), [(list(p), list(t)) for p, t in data["templates"]], str(data["state"]),
                   str(data["text"]), str(data["origin"]))


@dataclass
class Catalogue:
    """Every node's cached definition, and the plugin report ``comfy plugins`` shows.

    :param key: the :func:`catalogue_key` it was built under.
    :param nodes: node name -> :class:`CatalogueNode`, in the registry's (sorted) order.
    :param types: the declared data types, ``{"name", "description", "accepts"}`` each.
    :param plugins: every plugin's record (:meth:`PluginRecord.as_dict`), in load order.
    :param collisions: node names several plugins claimed (:meth:`NodeCollision.as_dict`).
    :param warnings: the plugin manager's warnings after loading and building the registry.
    :param missing_internals: pack -> ComfyUI internals it used that Hearth lacks (recorded at import).
    :param built_ns: when it was built (``time.time_ns()``).
    :param newest_ns: the newest modification time among the files of its key.
    """

    key: str
    nodes: dict[str, CatalogueNode]
    types: list[dict[str, Any]] = field(default_factory=list)
    plugins: list[dict[str, Any]] = field(default_factory=list)
    collisions: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing_internals: dict[str, list[str]] = field(default_factory=dict)
    built_ns: int = 0
    newest_ns: int = 0
    hearth: str = ""
    changed: bool = field(default=False, compare=False)  # a dynamic node was read again: worth saving

    # -- what commands and the server read -------------------------------------------------------------------

    @property
    def dynamic(self) -> frozenset[str]:
        """The names of the nodes whose ``INPUT_TYPES`` reads state each call."""
        return frozenset(name for name, node in self.nodes.items() if node.dynamic)

    def refresh_lists(self, model_folders: ModelFolders) -> None:
        """Put today's model file lists into every node's ``info`` (in place)."""
        kinds: set[str] = set()
        for node in self.nodes.values():
            kinds |= template_kinds(node.templates)
        lists = {kind: _listing(model_folders, kind) for kind in sorted(kinds)}
        for node in self.nodes.values():
            if node.templates:
                before = node.text
                apply_templates(node.info, node.templates, lists)
                node.text = _fragment(node.info)
                self.changed = self.changed or node.text != before

    def node_info(self, name: str, runtime: Runtime | None = None) -> dict[str, Any] | None:
        """One node's ``comfy nodes --json`` entry. A dynamic node is read again from its class inside
        ``runtime``; ``None`` when it cannot be (its class is not importable by name: load the plugins)."""
        node = self.nodes[name]
        if not node.dynamic:
            return node.info
        state = ""
        if ALWAYS not in node.depends and runtime is not None:
            state = folder_state(runtime, node.depends)
            if state == node.state:
                return node.info
        definition = self.definition(name)
        if definition is None:
            return None
        info = _read_info(definition, runtime)
        if state and runtime is not None:  # what the folders say now: the next command need not read it again
            node.info, node.state, node.text, self.changed = info, state, _fragment(info), True
        return info

    def object_info(self, runtime: Runtime | None = None, *, broken: bool = True) -> dict[str, Any] | None:
        """Every node's entry, as ``comfy nodes --json`` prints it (``broken=False``: as ``/object_info`` serves
        it, leaving out nodes whose ``INPUT_TYPES`` fails). ``None`` when a dynamic node cannot be read again
        without loading the plugins."""
        out: dict[str, Any] = {}
        for name in self.nodes:
            info = self.node_info(name, runtime)
            if info is None:
                return None
            if broken or "error" not in info:
                out[name] = info
        return out

    def object_info_json(self, runtime: Runtime | None = None) -> str | None:
        """``json.dumps(self.object_info(runtime), indent=2)``, byte for byte, from each node's kept ``text``."""
        parts = []
        for name, node in self.nodes.items():
            if node.dynamic:
                info = self.node_info(name, runtime)
                if info is None:
                    return None
                text = node.text if node.info is info else _fragment(info)
            else:
                text = node.text or _fragment(node.info)
            parts.append(f"  {json.dumps(name)}: {text}")
        return "{\n" + ",\n".join(parts) + "\n}" if parts else "{}"

    def node_errors(self, runtime: Runtime | None = None) -> dict[str, dict[str, str]] | None:
        """``{plugin: {node: what failed}}`` for the nodes whose ``INPUT_TYPES`` fails (``comfy plugins``)."""
        found: dict[str, dict[str, str]] = {}
        for name, node in self.nodes.items():
            info = self.node_info(name, runtime)
            if info is None:
                return None
            if "error" in info:
                found.setdefault(node.plugin, {})[name] = info["error"]
        return found

    def plugin_records(self) -> list[PluginRecord]:
        from hearth.core.plugins import PluginRecord

        return [PluginRecord(**record) for record in self.plugins]

    def node_collisions(self) -> list[NodeCollision]:
        from hearth.core.plugins import NodeCollision

        return [NodeCollision(**c) for c in self.collisions]

    def definition(self, name: str) -> NodeDefinition | None:
        """The node's real definition, its class imported by name; ``None`` when that cannot be done."""
        node = self.nodes[name]
        module, _, qualname = node.source.partition(":")
        if not module or not qualname or not node.origin:
            return None
        try:
            # Only the very file the class came from: a pack's module name may mean another module in this process.
            loaded = sys.modules.get(module)
            found = getattr(loaded, "__file__", None) if loaded is not None else \
                getattr(importlib.util.find_spec(module), "origin", None)
            if not found or str(Path(found).resolve()) != node.origin:
                return None
            target: Any = importlib.import_module(module)
            for part in qualname.split("."):
                target = getattr(target, part)
            return NodeDefinition(name, target, display_name=node.info.get("display_name"), plugin=node.plugin,
                                  python_module=node.info.get("python_module"))
        except Exception as exc:  # noqa: BLE001 - any failure means: load the plugins instead
            log.debug("node %s: class %s not importable by name: %s", name, node.source, exc)
            return None

    def registry(self, runtime: Runtime | None = None) -> NodeRegistry:
        """A node registry for validation made from the cached definitions, importing no plugin: each node is a
        stand-in class that answers ``INPUT_TYPES`` and its outputs from its entry, made when first asked for (a
        dynamic node's entry as :meth:`node_info` reads it inside ``runtime``). A node whose validation needs its
        class gets the real one, imported by name; asking for one whose class cannot be had that way raises
        :class:`CatalogueMiss` (validate against the loaded plugins instead)."""
        from hearth.core.node_registry import NodeRegistry
        from hearth.core.types import DataType

        types = {t["name"]: DataType(t["name"], t.get("description", ""), frozenset(t.get("accepts", ())))
                 for t in self.types}
        return NodeRegistry.of_mapping(_Definitions(self, runtime), types, list(self.warnings))

    # -- the file ----------------------------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "key": self.key, "hearth": self.hearth, "built_ns": self.built_ns,
                "newest_ns": self.newest_ns, "nodes": {n: node.as_dict() for n, node in self.nodes.items()},
                "types": self.types, "plugins": self.plugins, "collisions": self.collisions,
                "warnings": self.warnings, "missing_internals": self.missing_internals}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalogue:
        """Read a catalogue file's contents; raises ``KeyError``/``TypeError``/``ValueError`` on a bad shape."""
        if data.get("format") != FORMAT:
            raise ValueError(f"catalogue format {data.get('format')!r}, expected {FORMAT}")
        return cls(str(data["key"]), {str(n): CatalogueNode.from_dict(d) for n, d in dict(data["nodes"]).items()},
                   list(data["types"]), list(data["plugins"]), list(data["collisions"]), list(data["warnings"]),
                   {str(k): list(v) for k, v in dict(data["missing_internals"]).items()},
                   int(data["built_ns"]), int(data["newest_ns"]), str(data.get("hearth", "")))


# -- key, place, load, save, build -------------------------------------------------------------------------------

def catalogue_key(options: RuntimeOptions) -> str:
    """The key a catalogue for ``options`` must have to be trusted: Hearth's version, the installed plugin
    distributions and their versions (with an editable one's files), the custom-node folders' files, the
    plugin-loading settings. Model folders are not in it: their lists are read on every load."""
    return fingerprint(options).key


def catalogue_path(options: RuntimeOptions) -> Path:
    """Where the catalogue for ``options`` lives: one file per set of settings under the cache folder."""
    return _file_for(fingerprint(options))


def load_catalogue(options: RuntimeOptions, model_folders: ModelFolders | None = None, *,
                   path: Path | None = None, key: Fingerprint | None = None) -> Catalogue | None:
    """The catalogue for ``options`` with today's model lists, or ``None`` when there is none, its key is stale,
    one of its files may have changed unseen (racy), the file is corrupt, or ``HEARTH_CATALOGUE=off``.
    ``key``: the options' fingerprint when the caller has it (it costs a walk of the keyed folders)."""
    env = None if options.environ is None else dict(options.environ)
    if not catalogue_enabled(env):
        return None
    print_ = key or fingerprint(options)
    path = path or _file_for(print_)
    try:
        catalogue = Catalogue.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.info("catalogue %s is unreadable (%s: %s); rebuilding", path, type(exc).__name__, exc)
        return None
    if catalogue.key != print_.key:
        log.info("catalogue %s is stale; rebuilding", path)
        return None
    if print_.newest_ns >= catalogue.built_ns - RACY_NS:
        log.info("catalogue %s was built within two seconds of a change to its files; rebuilding", path)
        return None
    try:
        catalogue.refresh_lists(model_folders if model_folders is not None else
                                ModelFolders(options.models_dir, extra_configs=options.extra_model_paths))
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # a template that no longer fits its entry
        log.info("catalogue %s does not fit its model lists (%s); rebuilding", path, exc)
        return None
    return catalogue


def save_catalogue(catalogue: Catalogue, options: RuntimeOptions, *, path: Path | None = None) -> Path | None:
    """Write ``catalogue`` for ``options`` atomically (a temporary file, then ``os.replace``); the path written,
    or ``None`` when ``HEARTH_CATALOGUE=off`` or the cache folder is not writable (the command still works)."""
    env = None if options.environ is None else dict(options.environ)
    if not catalogue_enabled(env):
        return None
    path = path or catalogue_path(options)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(json.dumps(catalogue.as_dict(), default=str, separators=(",", ":")))
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("cannot write the node catalogue %s: %s", path, exc)
        return None
    return path


def build_catalogue(runtime: Runtime, *, key: Fingerprint | None = None) -> Catalogue:
    """Read every node of ``runtime`` (loading its plugins) into a catalogue keyed for its options (``key``: their
    fingerprint, taken before anything was read, when the caller has it)."""
    started = time.time_ns()
    print_ = key or fingerprint(runtime.options)
    manager = runtime.plugins
    registry = runtime.nodes
    nodes: dict[str, CatalogueNode] = {}
    with probe_folders() as root:
        probe = probe_runtime(runtime, root)
        for name in registry:
            definition = registry[name]
            first = _read_info(definition, runtime)
            seen = _read_info(definition, probe)
            # Most nodes list no files: equal answers need no walk for templates.
            templates = [] if seen == first else find_templates(
                first, seen, lambda kind: _listing(runtime.model_folders, kind))
            depends: list[str] = []
            if _changes_by_itself(definition, runtime) or getattr(definition.cls, DYNAMIC_MARKER, False):
                depends = [ALWAYS]
            elif templates is None:
                depends, templates = _folders_read(definition, runtime, root, first)
                depends = depends or [ALWAYS]
            source, origin = _source(definition.cls)
            nodes[name] = CatalogueNode(
                first, definition.plugin, source, depends, _needs_class(definition, runtime),
                [] if ALWAYS in depends else templates or [],
                folder_state(runtime, depends) if depends and ALWAYS not in depends else "", _fragment(first), origin)
    missing = manager.missing_internals()
    return Catalogue(
        key=print_.key, nodes=nodes,
        types=[{"name": t.name, "description": t.description, "accepts": sorted(t.accepts)}
               for t in registry.types.values()],
        plugins=jsonable([record.as_dict() for record in manager.records.values()]),
        collisions=[c.as_dict() for c in manager.collisions], warnings=list(manager.warnings),
        missing_internals={k: list(v) for k, v in missing.items()},
        built_ns=started, newest_ns=print_.newest_ns, hearth=hearth_version())


def catalogue_for(runtime: Runtime, *, rebuild: bool = False) -> tuple[Catalogue, bool]:
    """(the catalogue for ``runtime``, whether it came from the cache): loaded when fresh, else built (loading
    the plugins) and saved."""
    key = fingerprint(runtime.options)  # once: it walks the keyed folders
    if not rebuild:
        found = load_catalogue(runtime.options, runtime.model_folders, key=key)
        if found is not None:
            return found, True
    built = build_catalogue(runtime, key=key)
    save_catalogue(built, runtime.options, path=_file_for(key))
    return built, False


def catalogue_file(key: Fingerprint) -> Path:
    """Where the catalogue of the settings ``key`` was taken for lives (:func:`catalogue_path` without the walk)."""
    return cache_folder() / "catalogue" / f"{key.identity}.json"


_file_for = catalogue_file


# -- helpers -----------------------------------------------------------------------------------------------------

def _listing(model_folders: ModelFolders, kind: str) -> list[str]:
    try:
        return model_folders.list(kind)
    except KeyError:  # a kind the probe saw that these folders do not know: no files
        return []


def _read_info(definition: NodeDefinition, runtime: Runtime | None) -> dict[str, Any]:
    """The node's ``comfy nodes --json`` entry read inside ``runtime``, as JSON would carry it."""
    from hearth.core.runtime import activated

    with activated(runtime):
        try:
            return jsonable(definition.object_info())
        except NodeDefinitionError as exc:
            return jsonable(definition.broken_info(str(exc)))


def _folders_read(definition: NodeDefinition, runtime: Runtime, root: Path,
                  real: dict[str, Any]) -> tuple[list[str], list[Template] | None]:
    """Which folders a node's answer changes with (one probe per folder, each changing that folder alone), and
    its model-list templates when the model folders change nothing else."""
    found = []
    templates = None
    for what in FOLDER_STATES:
        seen = _read_info(definition, probe_runtime(runtime, root, (what,)))
        if what == "models":
            templates = find_templates(real, seen, lambda kind: _listing(runtime.model_folders, kind))
            if templates is None:
                found.append(what)
        elif seen != real:
            found.append(what)
    return found, templates


def _changes_by_itself(definition: NodeDefinition, runtime: Runtime) -> bool:
    """Whether two calls of ``INPUT_TYPES`` in a row answer differently (a clock, a random pick, a counter)."""
    from hearth.core.runtime import activated

    with activated(runtime):
        try:
            return bool(definition.cls.INPUT_TYPES() != definition.cls.INPUT_TYPES())
        except Exception:  # noqa: BLE001 - a failing INPUT_TYPES is listed with its error, not dynamic for it
            return False


def _fragment(info: dict[str, Any]) -> str:
    """``info`` encoded as ``json.dumps(..., indent=2)`` encodes it as a value inside a top-level object."""
    return json.dumps(info, indent=2, default=str).replace("\n", "\n  ")


def _source(cls: type) -> tuple[str, str]:
    """(``module:qualname``, the module's file) of a node class, or empty strings when it cannot be imported by
    name (a class made inside a function, a module with no file)."""
    module, qualname = getattr(cls, "__module__", ""), getattr(cls, "__qualname__", "")
    file = getattr(sys.modules.get(module), "__file__", None) if module else None
    if not module or not qualname or "<locals>" in qualname or not file:
        return "", ""
    return f"{module}:{qualname}", str(Path(file).resolve())


def _needs_class(definition: NodeDefinition, runtime: Runtime) -> bool:
    """Whether validating the node takes more than its ``/object_info`` entry says: a ``VALIDATE_INPUTS``, type
    objects with rules of their own, a section or ``RETURN_TYPES`` that claims names it does not list."""
    from hearth.core.runtime import activated

    if getattr(definition.cls, "VALIDATE_INPUTS", None) is not None or definition.open_outputs:
        return True
    if any(obj is not None for obj in definition.return_objects):
        return True
    with activated(runtime):
        try:
            inputs = definition.inputs()
        except NodeDefinitionError:
            return False  # validation reports the same failure from the cached entry's error
    if getattr(inputs.specs, "_open", None):
        return True
    return any(spec.declared is not None for spec in inputs.specs.values())


def _stand_in(name: str, node: CatalogueNode, info: dict[str, Any]) -> NodeDefinition:
    """A definition whose class answers ``INPUT_TYPES`` and the outputs from the node's entry (for validation)."""
    error = info.get("error")

    def input_types(cls: type) -> dict[str, Any]:
        if error is not None:
            raise NodeDefinitionError(error)  # the message the real class's failure gave, word for word
        return info["input"]

    attrs = {
        "INPUT_TYPES": classmethod(input_types), "RETURN_TYPES": tuple(info.get("output", ())),
        "RETURN_NAMES": tuple(info.get("output_name", ())), "OUTPUT_IS_LIST": tuple(info.get("output_is_list", ())),
        "OUTPUT_NODE": bool(info.get("output_node", False)), "CATEGORY": info.get("category", ""),
        "DESCRIPTION": info.get("description", ""), "FUNCTION": "run", "run": _not_runnable,
        "__module__": str(info.get("python_module") or "nodes"),
    }
    cls = type(name if name.isidentifier() else "CataloguedNode", (), attrs)
    return NodeDefinition(name, cls, display_name=info.get("display_name"), plugin=node.plugin,
                          python_module=info.get("python_module"))


def _not_runnable(self: Any, **_: Any) -> Any:
    raise RuntimeError("a catalogued node stands in for validation only; load the plugins to run it")


class _Definitions(Mapping[str, NodeDefinition]):
    """Node name -> definition, each made from the catalogue when first asked for."""

    def __init__(self, catalogue: Catalogue, runtime: Runtime | None) -> None:
        self._catalogue = catalogue
        self._runtime = runtime
        self._made: dict[str, NodeDefinition] = {}

    def __getitem__(self, name: str) -> NodeDefinition:
        found = self._made.get(name)
        if found is None:
            node = self._catalogue.nodes[name]  # KeyError: no such node, as the registry says
            if node.needs_class:
                found = self._catalogue.definition(name)
            else:
                info = self._catalogue.node_info(name, self._runtime)
                found = None if info is None else _stand_in(name, node, info)
            if found is None:
                raise CatalogueMiss(f"node {name}: its class ({node.source or 'a pack module'}) cannot be imported "
                                    "by name")
            self._made[name] = found
        return found

    def __iter__(self) -> Any:
        return iter(self._catalogue.nodes)

    def __len__(self) -> int:
        return len(self._catalogue.nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._catalogue.nodes
