"""The plugin manager: finds plugins by tier, loads them without letting one break the rest, and collects hooks.

Tiers, as in pytest:

* ``essential`` — the executor's own plugin (base data types); cannot be disabled.
* ``default`` — the builtin nodes (registered ``trylast``) and distributions that
  declare ``[project.entry-points."hearth.default"]`` (the ComfyUI compatibility plugin, whose custom-node loader
  turns every folder under ``custom_nodes/`` into a plugin of the ``installed`` tier). A distribution's entry-point
  group is its tier: core names no plugin's module.
* ``installed`` — distributions that declare ``[project.entry-points.hearth]``.

``HEARTH_PLUGINS`` (comma-separated allow-list) and ``HEARTH_DISABLE_PLUGINS`` choose what loads. A node name
that several plugins register stays with the provider already there (see ``provider_rank``); a pack replaces it
only where ``HEARTH_ALLOW_OVERRIDE`` (``PLUGIN:NODE``, comma-separated) allows. A plugin that
fails to import, or that implements a hook that does not exist, is recorded with its error and left out; the rest
load.

By default the installed tier is every ``hearth`` entry point this Python can see. Given ``site_packages`` (an
environment's folders, for ``--env``), it is exactly the entry points of the distributions installed there: the
folders join the import path after this Python's own, so the base (torch above all) stays single, and each of
those distributions' top-level packages is imported from the environment even when another copy is importable.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import logging
import os
import re
import site
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pluggy

from hearth.core import hookspecs
from hearth.core.hookspecs import PROJECT_NAME
from hearth.core.trust import WHY_FIRST_PARTY, Placement, TrustPolicy, hearth_format_refusal

log = logging.getLogger("hearth.plugins")

ENTRY_POINT_GROUP = "hearth"
# A distribution whose plugin belongs to the default tier (as pytest's default plugins) declares it here. The tier
# only ranks it below installed packs in a name clash, so a distribution gains nothing by claiming it.
DEFAULT_ENTRY_POINT_GROUP = "hearth.default"
ENTRY_POINT_GROUPS = {DEFAULT_ENTRY_POINT_GROUP: "default", ENTRY_POINT_GROUP: "installed"}
TIERS = ("essential", "default", "installed")
# Lower rank wins a clash of sampler or scheduler names (node names: PluginManager.provider_rank).
TIER_RANK = {"installed": 0, "default": 1, "essential": 2}

ESSENTIAL_PLUGINS = {"executor": "hearth.core.executor.essential"}
DEFAULT_PLUGINS = {"builtin_nodes": "hearth.core.builtin_nodes", "model_loaders": "hearth.core.models.loader_nodes"}
CUSTOM_NODES_PLUGIN = "custom_nodes"
COMPAT_DISTRIBUTION = "hearth-comfy-compat"
# Hearth's own plugin distributions: in a node-name clash they rank with core, above every other pack.
FIRST_PARTY_DISTRIBUTIONS = frozenset({"hearth-sd", "hearth-samplers", "hearth-lora", "hearth-video", "hearth-upscale",
                                       "hearth-audio", "hearth-dit", COMPAT_DISTRIBUTION})
# Comma-separated PLUGIN:NODE (or PLUGIN:*) entries: the user's leave for that plugin to replace a node another
# provider already has. Without it, the provider already there keeps the name and the newcomer is refused.
ENV_ALLOW_OVERRIDE = "HEARTH_ALLOW_OVERRIDE"


class CustomNodePacks(Protocol):
    """What a ``custom_nodes_for_folders`` implementation returns: registered as the ``custom_nodes`` plugin.

    It contributes the packs' nodes through its own ``register_nodes`` hook implementation.
    """

    records: list[PluginRecord]  # one per pack, kind "comfyui", tier "installed"
    web_directories: dict[str, Path]  # pack -> its WEB_DIRECTORY, served under /extensions/<pack>/

    def missing_internals(self) -> dict[str, list[str]]:
        """Pack name -> the ComfyUI internals it used that the plugin lacks, for ``comfy plugins``."""


@dataclass
class PluginRecord:
    """What ``comfy plugins`` shows for one plugin."""

    name: str
    tier: str
    version: str = ""
    module: str = ""
    kind: str = "hearth"  # "hearth" (pluggy plugin) or "comfyui" (a custom_nodes pack)
    error: str | None = None
    traceback: str | None = None
    node_count: int = 0
    notes: list[str] = field(default_factory=list)
    distribution: str = ""  # the installed distribution that declared it ("" for core and custom-node folders)
    placement: str = ""  # "in-process", "pack host", or "" when it was not loaded (or before it was placed)
    placement_why: str = ""  # why it runs there (or why it was refused): a Placement's `why`
    network: bool = False  # the user allowed it the network by name (comfy trust PACK --network)

    @property
    def first_party(self) -> bool:
        return _normalize(self.distribution) in FIRST_PARTY_DISTRIBUTIONS

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "tier": self.tier, "kind": self.kind,
            "module": self.module, "node_count": self.node_count, "error": self.error,
            "traceback": self.traceback, "notes": list(self.notes), "distribution": self.distribution,
            "placement": self.placement, "placement_why": self.placement_why, "network": self.network,
        }

    def place(self, placement: Placement) -> None:
        """Record where the plugin runs (and whether it may use the network) from a trust decision."""
        self.placement, self.placement_why, self.network = placement.where, placement.why, placement.network


@dataclass
class NodeCollision:
    """Two or more plugins registering one node name: who provides it, who was refused, and whether the user's
    HEARTH_ALLOW_OVERRIDE made a newcomer the provider."""

    node: str
    provider: str
    refused: list[str]
    overridden: str = ""  # the plugin the provider would have been, when an allowed override replaced it

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "provider": self.provider, "refused": list(self.refused),
                "overridden": self.overridden}


class PluginError(Exception):
    """A plugin could not be loaded; the message names the plugin and the reason."""


def _names_from_env(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginManager:
    """Hearth's pluggy manager with tiers, provenance and error isolation."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.warnings: list[str] = []
        self.trust = TrustPolicy()  # set by load(): where packs run (comfy plugins shows it)
        self.pack_hosts: Any = None  # set by load(): the pack host API isolated packs run through
        self._spec_names = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "hearth_spec")}
        self._node_registry = None
        self.allow_override: set[str] = set()  # PLUGIN:NODE / PLUGIN:* entries (HEARTH_ALLOW_OVERRIDE)
        self.collisions: list[NodeCollision] = []

    @property
    def hook(self) -> Any:
        return self.pm.hook

    # -- loading ---------------------------------------------------------------------------------------------

    def load(
        self,
        *,
        allow: Iterable[str] | None = None,
        disable: Iterable[str] | None = None,
        custom_nodes: Sequence[str | os.PathLike[str]] = (),
        entry_points: bool = True,
        environ: dict[str, str] | None = None,
        site_packages: Sequence[str | os.PathLike[str]] | None = None,
        allow_override: Iterable[str] | None = None,
        trust: TrustPolicy | None = None,
        pack_hosts: Any = None,
    ) -> PluginManager:
        """Load every tier. ``allow``/``disable`` default to ``HEARTH_PLUGINS``/``HEARTH_DISABLE_PLUGINS``.

        ``site_packages``: take the installed tier only from the distributions in these folders (an
        environment's), instead of from every entry point this Python sees.
        ``allow_override``: ``PLUGIN:NODE`` entries letting a plugin replace a node another provider has; default
        ``HEARTH_ALLOW_OVERRIDE``.
        ``trust``: where packs run. Hearth-format packs (entry points) cannot run in a pack host yet, so one the
        policy would isolate is not imported at all; its record says how to trust it. Default: all in-process.
        ``pack_hosts``: the pack host API the Runtime was lent (``RuntimeOptions.pack_hosts``), kept as
        ``self.pack_hosts`` for the loaders of isolated packs; ``None``: none, isolated packs are refused.
        """
        trust = trust if trust is not None else TrustPolicy()
        self.trust = trust
        self.pack_hosts = pack_hosts
        env = os.environ if environ is None else environ
        self.allow_override = set(allow_override) if allow_override is not None else \
            (_names_from_env(env.get(ENV_ALLOW_OVERRIDE)) or set())
        allowed = set(allow) if allow is not None else _names_from_env(env.get("HEARTH_PLUGINS"))
        disabled = set(disable) if disable is not None else (_names_from_env(env.get("HEARTH_DISABLE_PLUGINS")) or set())

        def wanted(name: str, tier: str) -> bool:
            if tier == "essential":
                if name in disabled:
                    self.warnings.append(f"plugin {name!r} is essential and cannot be disabled")
                return True
            if name in disabled:
                return False
            return allowed is None or name in allowed

        for name, module in ESSENTIAL_PLUGINS.items():
            wanted(name, "essential")
            self._load_module(name, module, "essential")
        for name, module in DEFAULT_PLUGINS.items():
            if wanted(name, "default"):
                self._load_module(name, module, "default")
        found: list[importlib.metadata.EntryPoint] = []
        if entry_points:
            if site_packages is None:
                found = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
            else:
                found = self._use_site_packages([Path(p) for p in site_packages])
        # The default tier loads with or without the installed one (as the builtin nodes do), from every
        # distribution this Python sees, an environment's included once its folders are on the path.
        defaults = list(importlib.metadata.entry_points(group=DEFAULT_ENTRY_POINT_GROUP))
        for ep in sorted(defaults, key=lambda e: e.name) + sorted(found, key=lambda e: e.name):
            tier = ENTRY_POINT_GROUPS[ep.group]
            if ep.name in self.records:
                self.warnings.append(f"entry point {ep.name!r} ({ep.value}) has the name of a plugin already loaded; skipped")
                continue
            if wanted(ep.name, tier):
                version = ep.dist.version if ep.dist is not None else ""
                dist = (ep.dist.metadata["Name"] or "") if ep.dist is not None else ""
                placement = self._hearth_format_placement(ep.name, dist, trust)
                if placement.isolated:
                    pack = dist or ep.name
                    self.records[ep.name] = PluginRecord(
                        ep.name, tier, version, ep.value, error=hearth_format_refusal(pack), distribution=dist,
                        placement_why=placement.why, network=placement.network)
                    log.info("plugin %s not loaded: %s", ep.name, self.records[ep.name].error)
                    continue
                self._load(ep.name, tier, ep.load, module=ep.value, version=version, distribution=dist)
                self.records[ep.name].place(placement)
        if custom_nodes and wanted(CUSTOM_NODES_PLUGIN, "default"):
            self._load_custom_nodes([Path(p) for p in custom_nodes], lambda n: wanted(n, "installed"))
        self.pm.check_pending()
        return self

    @staticmethod
    def _hearth_format_placement(name: str, distribution: str, trust: TrustPolicy) -> Placement:
        """Where an entry-point pack would run: trusting either its entry-point or its distribution name counts."""
        first_party = _normalize(distribution) in FIRST_PARTY_DISTRIBUTIONS
        placements = [trust.placement(n, first_party=first_party) for n in dict.fromkeys((distribution, name)) if n]
        network = any(p.network for p in placements)
        chosen = next((p for p in placements if not p.isolated), placements[0])
        return Placement(chosen.isolated, chosen.why, network)

    def _load_custom_nodes(self, folders: list[Path], wanted: Callable[[str], bool]) -> None:
        """Hand the custom-node folders to the plugin that loads ComfyUI-format packs, and record its packs."""
        packs = self.pm.hook.custom_nodes_for_folders(folders=folders, wanted=wanted, plugins=self)
        if packs is None:
            shown = ", ".join(str(f) for f in folders)
            self.records[CUSTOM_NODES_PLUGIN] = PluginRecord(
                CUSTOM_NODES_PLUGIN, "default", kind="comfyui",
                error=f"custom-node folders given ({shown}) but no plugin loads ComfyUI-format packs: install "
                      f"{COMPAT_DISTRIBUTION} (pip install -e plugins/comfy_compat), or check that "
                      f"HEARTH_PLUGINS / HEARTH_DISABLE_PLUGINS do not leave out comfy_compat")
            self.warnings.append(f"custom-node packs in {shown} were not loaded: they need {COMPAT_DISTRIBUTION}")
            return
        self.register(packs, CUSTOM_NODES_PLUGIN, "default", module=type(packs).__module__).place(
            Placement(False, WHY_FIRST_PARTY))  # the compatibility plugin's loader itself; its packs are placed apart
        for record in packs.records:
            self.records[record.name] = record

    def _use_site_packages(self, folders: list[Path]) -> list[importlib.metadata.EntryPoint]:
        """Make ``folders`` importable and return the ``hearth`` entry points of the distributions in them."""
        for folder in folders:
            if not folder.is_dir():
                self.warnings.append(f"site-packages folder {folder} does not exist; no plugins from it")
            elif str(folder) not in sys.path:
                site.addsitedir(str(folder))  # appended after the base, with its .pth files processed
        found: list[importlib.metadata.EntryPoint] = []
        preferred: set[str] = set()
        for dist in distributions_in(folders):
            eps = list(dist.entry_points.select(group=ENTRY_POINT_GROUP))
            if not eps:
                continue
            found += eps
            preferred |= top_level_names(dist) | {ep.module.partition(".")[0] for ep in eps}
        _PreferFolders.install(preferred, folders)
        for name in sorted(preferred):
            module = sys.modules.get(name)
            origin = getattr(module, "__file__", None) if module is not None else None
            if origin and not any(Path(origin).resolve().is_relative_to(f.resolve()) for f in folders):
                self.warnings.append(f"module {name!r} was already imported from {origin}; the environment's "
                                     "copy is not used in this process")
        return found

    def _load_module(self, name: str, module: str, tier: str) -> None:
        self._load(name, tier, lambda: importlib.import_module(module), module=module)
        self.records[name].place(Placement(False, WHY_FIRST_PARTY))

    def _load(self, name: str, tier: str, loader: Callable[[], Any], *, module: str = "", version: str = "",
              distribution: str = "") -> None:
        try:
            plugin = loader()
        except BaseException as exc:  # noqa: BLE001 - any import failure (even SystemExit) is the plugin's fault
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.records[name] = PluginRecord(
                name, tier, version, module, error=f"failed to import: {type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(), distribution=distribution,
            )
            log.debug("plugin %s failed to import", name, exc_info=True)
            return
        self.register(plugin, name, tier, module=module, version=version, distribution=distribution)

    def register(self, plugin: Any, name: str, tier: str = "installed", *, module: str = "",
                 version: str = "", distribution: str = "") -> PluginRecord:
        """Register one plugin object; unknown hooks and bad signatures are recorded as the plugin's error."""
        if tier not in TIERS:
            raise ValueError(f"unknown plugin tier {tier!r}; expected one of {', '.join(TIERS)}")
        record = PluginRecord(name, tier, version, module or getattr(plugin, "__name__", type(plugin).__name__),
                              distribution=distribution)
        self.records[name] = record
        unknown = [attr for attr in dir(plugin) if self.pm.parse_hookimpl_opts(plugin, attr) is not None
                   and attr not in self._spec_names]
        if unknown:
            hints = []
            for attr in unknown:
                close = difflib.get_close_matches(attr, sorted(self._spec_names), n=1)
                hints.append(f"{attr!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            record.error = f"implements unknown hook {', '.join(hints)}"
            return record
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            record.error = f"invalid hook implementation: {exc}"
            record.traceback = traceback.format_exc()
        self._node_registry = None
        return record

    def unregister(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.records.pop(name, None)
        self._node_registry = None

    # -- collecting ------------------------------------------------------------------------------------------

    def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of a ``register_*`` hook separately: ``[(plugin_name, result), ...]``.

        A plugin whose implementation raises is recorded with the error; the others still contribute.
        """
        caller = getattr(self.pm.hook, hook_name)
        results = []
        for impl in reversed(caller.get_hookimpls()):
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                record = self.records.get(impl.plugin_name)
                message = f"{hook_name} raised {type(exc).__name__}: {exc}"
                if record is not None:
                    record.error = message
                    record.traceback = traceback.format_exc()
                self.warnings.append(f"plugin {impl.plugin_name!r}: {message}")
                continue
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    def tier_of(self, plugin_name: str) -> str:
        record = self.records.get(plugin_name)
        return record.tier if record else "installed"

    def provider_rank(self, plugin_name: str) -> int:
        """Who keeps a node name several plugins register (lower first): core's essential plugin, Hearth's own
        plugins, core's default plugins (builtin nodes), then every other installed pack."""
        record = self.records.get(plugin_name)
        if record is None:
            return 3
        if record.tier == "essential":
            return 0
        if record.first_party:
            return 1
        return 2 if record.tier == "default" else 3

    def may_override(self, plugin_name: str, node: str) -> bool:
        """Whether the user allowed `plugin_name` to replace `node` (HEARTH_ALLOW_OVERRIDE=PLUGIN:NODE or PLUGIN:*)."""
        return f"{plugin_name}:{node}" in self.allow_override or f"{plugin_name}:*" in self.allow_override

    def resolve_named(self, hook_name: str, what: str) -> dict[str, Any]:
        """Merge ``{name: thing}`` results of a hook; on a clash the higher tier, then the first plugin, wins."""
        claims: dict[str, list[tuple[int, str, Any]]] = {}
        for plugin, result in self.collect(hook_name):
            for name, thing in dict(result).items():
                claims.setdefault(name, []).append((TIER_RANK[self.tier_of(plugin)], plugin, thing))
        resolved = {}
        for name, options in claims.items():
            options.sort(key=lambda c: (c[0], c[1]))
            resolved[name] = options[0][2]
            for _, loser, _ in options[1:]:
                self.warnings.append(f"{what} {name!r} from plugin {loser!r} is shadowed by plugin {options[0][1]!r}")
        return resolved

    def nodes(self):
        """The node registry built from every plugin's ``register_nodes`` (built once, then cached)."""
        if self._node_registry is None:
            from hearth.core.node_registry import NodeRegistry

            self._node_registry = NodeRegistry.from_plugins(self)
        return self._node_registry

    def samplers(self) -> dict[str, Any]:
        return self.resolve_named("register_samplers", "sampler")

    def schedulers(self) -> dict[str, Any]:
        return self.resolve_named("register_schedulers", "scheduler")

    def routes(self) -> list[Any]:
        return [route for _, routes in self.collect("register_routes") for route in routes]

    def web_directories(self) -> dict[str, Path]:
        """Each ComfyUI-format pack's ``WEB_DIRECTORY`` as ``{pack: folder}`` (served under /extensions/<pack>/)."""
        loader = self.pm.get_plugin(CUSTOM_NODES_PLUGIN)
        return dict(getattr(loader, "web_directories", {}))

    def missing_internals(self) -> dict[str, list[str]]:
        """Pack name -> the ComfyUI internals it used that Hearth lacks (recorded as packs import and run them)."""
        report = getattr(self.pm.get_plugin(CUSTOM_NODES_PLUGIN), "missing_internals", None)
        return dict(report()) if callable(report) else {}

    def model_formats(self) -> list[Any]:
        return [fmt for _, formats in self.collect("register_model_formats") for fmt in formats]

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an ``on_*`` hook; an implementation that raises is logged, never propagated."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                self.warnings.append(f"plugin {impl.plugin_name!r}: {hook_name} raised {type(exc).__name__}: {exc}")
                log.warning("plugin %s: %s raised", impl.plugin_name, hook_name, exc_info=True)


# -- environments ------------------------------------------------------------------------------------------------

def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions_in(folders: Sequence[str | os.PathLike[str]]) -> list[importlib.metadata.Distribution]:
    """The distributions installed in ``folders`` (first folder wins a name found twice), by name."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions(path=[str(f) for f in folders]):
        name = dist.metadata["Name"]
        if name and _normalize(name) not in seen:
            seen[_normalize(name)] = dist
    return [seen[k] for k in sorted(seen)]


def top_level_names(dist: importlib.metadata.Distribution) -> set[str]:
    """The importable top-level names a distribution installs (from top_level.txt, else its RECORD)."""
    text = dist.read_text("top_level.txt")
    if text:
        return {line.strip() for line in text.splitlines() if line.strip()}
    names = set()
    for file in dist.files or ():
        parts = file.parts
        if not parts or parts[0].endswith((".dist-info", ".data", ".egg-info")) or parts[0] in ("..", "__pycache__"):
            continue
        if len(parts) > 1:
            names.add(parts[0])
        elif parts[0].endswith(".py"):
            names.add(parts[0][:-3])
    return {n for n in names if n.isidentifier()}


class _PreferFolders(importlib.abc.MetaPathFinder):
    """Finds the named top-level packages in an environment's folders before anywhere else on the import path.

    An environment's packs may also be importable from the base (an editable first-party plugin in Hearth's own
    virtual environment, say); ``--env`` means the environment's copy.
    """

    def __init__(self, names: set[str], folders: list[Path]) -> None:
        self.names = frozenset(names)
        self.folders = [str(f) for f in folders]

    @classmethod
    def install(cls, names: set[str], folders: list[Path]) -> None:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, cls)]
        if names:
            sys.meta_path.insert(0, cls(names, folders))

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if path is not None or fullname not in self.names:
            return None  # submodules follow their package's __path__, which is already in the environment
        return importlib.machinery.PathFinder.find_spec(fullname, self.folders)


def active_plugins() -> PluginManager | None:
    """The current Runtime's plugin manager (loaded on first use), or ``None``.

    ``None`` outside every Runtime, and while the Runtime's plugins are loading in this thread (a pack asking at
    import time): node classes are plain classes and ComfyUI calls ``INPUT_TYPES`` without arguments, so a node
    that lists what other plugins registered (KSampler's sampler names) reaches the merged registry here.
    """
    from hearth.core.runtime import current_runtime  # deferred: the runtime module imports this one

    runtime = current_runtime()
    return runtime.loaded_plugins() if runtime is not None else None
