"""The node registry: every node type and data type that the loaded plugins contribute, with provenance."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hearth.core.nodes import NodeDefinition, NodeDefinitionError, types_match
from hearth.core.types import DataType

if TYPE_CHECKING:
    from hearth.core.plugins import PluginManager

log = logging.getLogger("hearth.nodes")


class NodeRegistry(Mapping[str, NodeDefinition]):
    """Read-only mapping of node name to :class:`NodeDefinition`, plus the declared data types."""

    def __init__(self, definitions: Mapping[str, NodeDefinition], types: Mapping[str, DataType] | None = None,
                 warnings: list[str] | None = None) -> None:
        self._definitions = dict(definitions)
        self.types = dict(types or {})
        self.warnings = list(warnings or [])
        self._accepts_cache: dict[tuple[str, str], bool] = {}
        self._logged: set[tuple[str, str]] = set()  # nodes whose failing INPUT_TYPES was logged, with the fault

    @classmethod
    def of_mapping(cls, definitions: Mapping[str, NodeDefinition], types: Mapping[str, DataType] | None = None,
                   warnings: list[str] | None = None) -> NodeRegistry:
        """A registry over ``definitions`` as given, not copied: a mapping that makes each definition when first
        asked for (the node catalogue's) stays lazy."""
        registry = cls({}, types, warnings)
        registry._definitions = definitions  # type: ignore[assignment] - read-only use: any Mapping will do
        return registry

    @classmethod
    def from_classes(cls, classes: Mapping[str, type], plugin: str = "test") -> NodeRegistry:
        """A registry of plain classes, for tests and embedding."""
        return cls({name: NodeDefinition(name, klass, plugin=plugin) for name, klass in classes.items()})

    @classmethod
    def from_plugins(cls, plugins: PluginManager) -> NodeRegistry:
        """Every plugin's nodes. A name several plugins register goes to the provider already there -- core,
        then Hearth's own plugins, then the builtin nodes, then other packs by name -- and never silently to a
        newcomer: the others are refused and listed (``plugins.collisions``, ``comfy plugins``), unless the user
        allowed one of them to override it (HEARTH_ALLOW_OVERRIDE=PLUGIN:NODE)."""
        from hearth.core.plugins import NodeCollision

        claims: dict[str, list[tuple[int, str, NodeDefinition]]] = {}
        warnings: list[str] = []
        for plugin, result in plugins.collect("register_nodes"):
            items = result.items() if isinstance(result, Mapping) else ((d.name, d) for d in result)
            for name, item in items:
                try:
                    definition = item if isinstance(item, NodeDefinition) else NodeDefinition(name, item)
                except NodeDefinitionError as exc:
                    warnings.append(f"plugin {plugin!r}: {exc}")
                    continue
                owner = definition.plugin or plugin
                definition.plugin = owner
                claims.setdefault(name, []).append((plugins.provider_rank(owner), owner, definition))
        definitions: dict[str, NodeDefinition] = {}
        counts: dict[str, int] = {}
        collisions: list[NodeCollision] = []
        for name, options in claims.items():
            options.sort(key=lambda c: (c[0], c[1]))
            provider = options[0][1]
            allowed = [c for c in options[1:] if plugins.may_override(c[1], name)]
            chosen = allowed[0] if allowed else options[0]
            definitions[name] = chosen[2]
            counts[chosen[1]] = counts.get(chosen[1], 0) + 1
            if len(options) == 1:
                continue
            refused = [c[1] for c in options if c is not chosen]
            collisions.append(NodeCollision(name, chosen[1], refused, provider if allowed else ""))
            for loser in refused:
                if allowed:
                    warnings.append(f"node {name!r}: plugin {chosen[1]!r} overrides plugin {loser!r} "
                                    f"(HEARTH_ALLOW_OVERRIDE allows it)")
                else:
                    warnings.append(f"node {name!r} from plugin {loser!r} was refused: plugin {provider!r} already "
                                    f"provides it (to let {loser!r} replace it, set "
                                    f"HEARTH_ALLOW_OVERRIDE={loser}:{name})")
        plugins.collisions = collisions
        for plugin_name, record in plugins.records.items():
            record.node_count = counts.get(plugin_name, 0)
        types: dict[str, DataType] = {}
        for _, result in plugins.collect("register_types"):
            for data_type in result:
                types[data_type.name] = data_type
        plugins.warnings.extend(warnings)
        return cls(dict(sorted(definitions.items())), types, warnings)

    def __getitem__(self, name: str) -> NodeDefinition:
        return self._definitions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._definitions)

    def __len__(self) -> int:
        return len(self._definitions)

    def accepts(self, input_type: str, output_type: str) -> bool:
        """Whether a link carrying ``output_type`` may feed an input declared as ``input_type``.

        ComfyUI's rule (:func:`hearth.core.nodes.types_match`): equal names match; ``*`` on either side matches;
        comma-separated unions (``"INT,FLOAT"``) match if any member does. A declared :class:`DataType` also
        accepts the types listed in its ``accepts``.
        """
        key = (input_type, output_type)
        hit = self._accepts_cache.get(key)
        if hit is None:
            hit = self._accepts(input_type, output_type)
            self._accepts_cache[key] = hit
        return hit

    def _accepts(self, input_type: str, output_type: str) -> bool:
        if types_match(output_type, input_type):  # ComfyUI's rule, on the plain names NodeDefinition reads
            return True
        wanted = {t.strip() for t in input_type.split(",")}
        given = {t.strip() for t in output_type.split(",")}
        for name in wanted:
            declared = self.types.get(name)
            if declared is not None and declared.accepts & given:
                return True
        return False

    def object_info(self, errors: dict[str, str] | None = None) -> dict[str, Any]:
        """Every node in the shape of ComfyUI's ``/object_info``. A node whose ``INPUT_TYPES`` fails is left out;
        given ``errors``, it is added there (``{node: what failed}``), else it is logged, as ComfyUI does (once per
        node and fault: the server asks on every page load)."""
        info = {}
        for name, definition in self._definitions.items():
            try:
                info[name] = definition.object_info()
            except NodeDefinitionError as exc:
                problem = str(exc)
                if errors is not None:
                    errors[name] = problem
                elif (name, problem) not in self._logged:
                    self._logged.add((name, problem))
                    log.warning("node %s (plugin %s) is left out of /object_info: %s", name, definition.plugin,
                                problem)
        return info

    def input_errors(self) -> dict[str, str]:
        """``{node: what failed}`` for every node whose ``INPUT_TYPES`` raises or returns no dict right now."""
        errors: dict[str, str] = {}
        for name, definition in self._definitions.items():
            try:
                definition.inputs()
            except NodeDefinitionError as exc:
                errors[name] = str(exc)
        return errors
