"""The node contract: ComfyUI's V1 node classes, read into one normalized description per node type.

A V1 class declares ``INPUT_TYPES`` (a classmethod returning ``required`` / ``optional`` / ``hidden`` sections),
``RETURN_TYPES``, ``FUNCTION`` and optional attributes (``RETURN_NAMES``, ``OUTPUT_NODE``, ``INPUT_IS_LIST``,
``OUTPUT_IS_LIST``, ``NOT_IDEMPOTENT``, ``IS_CHANGED``, ``VALIDATE_INPUTS``, ``check_lazy_status``, ...). Hearth's
own schema API (:mod:`hearth.core.schema`) produces classes of the same shape, so the executor knows one contract.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
HIDDEN_KINDS = frozenset({"PROMPT", "DYNPROMPT", "EXTRA_PNGINFO", "UNIQUE_ID", "AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG"})


class NodeDefinitionError(Exception):
    """A node class does not follow the node contract; the message names the class and the fault."""


@dataclass(frozen=True)
class InputSpec:
    """One declared input of a node."""

    name: str
    type: str
    section: str  # "required", "optional" or "hidden"
    options: Mapping[str, Any] = field(default_factory=dict)
    choices: tuple[Any, ...] | None = None  # for combo inputs

    @property
    def is_widget(self) -> bool:
        """True when the value is typed in the node (a widget) rather than arriving by link only."""
        return self.type in WIDGET_TYPES and not self.options.get("forceInput", False)

    @property
    def lazy(self) -> bool:
        return bool(self.options.get("lazy", False))


@dataclass(frozen=True)
class NodeInputs:
    """The inputs a node declares right now (``INPUT_TYPES`` may change as files appear, so it is re-read)."""

    specs: Mapping[str, InputSpec]
    raw: Mapping[str, Any]

    def section(self, name: str) -> list[InputSpec]:
        return [spec for spec in self.specs.values() if spec.section == name]


@dataclass
class NodeDefinition:
    """A node type as the registry knows it: its class, its display name and the plugin that gave it."""

    name: str
    cls: type
    display_name: str | None = None
    plugin: str = ""
    python_module: str | None = None

    def __post_init__(self) -> None:
        cls = self.cls
        for attr in ("INPUT_TYPES", "RETURN_TYPES", "FUNCTION"):
            if not hasattr(cls, attr):
                raise NodeDefinitionError(f"node class {self.name!r} ({cls!r}) has no {attr}; see the node contract")
        if not hasattr(cls, cls.FUNCTION):
            raise NodeDefinitionError(f"node class {self.name!r} declares FUNCTION={cls.FUNCTION!r} but has no such method")
        self.return_types: tuple[str, ...] = tuple(_type_name(t) for t in cls.RETURN_TYPES)
        names = getattr(cls, "RETURN_NAMES", None) or self.return_types
        self.return_names: tuple[str, ...] = tuple(names)
        is_list = getattr(cls, "OUTPUT_IS_LIST", None) or (False,) * len(self.return_types)
        self.output_is_list: tuple[bool, ...] = tuple(bool(x) for x in is_list)
        self.output_node: bool = bool(getattr(cls, "OUTPUT_NODE", False))
        self.input_is_list: bool = bool(getattr(cls, "INPUT_IS_LIST", False))
        self.not_idempotent: bool = bool(getattr(cls, "NOT_IDEMPOTENT", False))
        self.category: str = getattr(cls, "CATEGORY", "") or ""
        self.description: str = getattr(cls, "DESCRIPTION", "") or ""
        self.is_async: bool = inspect.iscoroutinefunction(getattr(cls, cls.FUNCTION))
        if self.display_name is None:
            self.display_name = getattr(cls, "DISPLAY_NAME", None) or self.name
        if self.python_module is None:
            self.python_module = getattr(cls, "RELATIVE_PYTHON_MODULE", None) or cls.__module__ or "nodes"

    def inputs(self) -> NodeInputs:
        """Read ``INPUT_TYPES`` and normalize it."""
        try:
            raw = self.cls.INPUT_TYPES()
        except Exception as exc:  # a pack's INPUT_TYPES that raises must not take the registry down
            raise NodeDefinitionError(f"{self.name}.INPUT_TYPES() raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise NodeDefinitionError(f"{self.name}.INPUT_TYPES() must return a dict, got {type(raw).__name__}")
        specs: dict[str, InputSpec] = {}
        for section in ("required", "optional", "hidden"):
            for name, value in (raw.get(section) or {}).items():
                specs[name] = _input_spec(self.name, name, section, value)
        return NodeInputs(specs, raw)

    def object_info(self) -> dict[str, Any]:
        """Describe the node in the shape of ComfyUI's ``/object_info/{class}`` entry."""
        raw = self.inputs().raw
        info: dict[str, Any] = {
            "input": {section: _jsonable_section(raw[section]) for section in ("required", "optional", "hidden")
                      if raw.get(section)},
            "input_order": {section: list(raw[section]) for section in ("required", "optional", "hidden")
                            if raw.get(section)},
            "output": list(self.return_types),
            "output_is_list": list(self.output_is_list),
            "output_name": list(self.return_names),
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }
        info["input"].setdefault("required", {})
        tooltips = getattr(self.cls, "OUTPUT_TOOLTIPS", None)
        if tooltips:
            info["output_tooltips"] = list(tooltips)
        for attr, key in (("DEPRECATED", "deprecated"), ("EXPERIMENTAL", "experimental")):
            if getattr(self.cls, attr, False):
                info[key] = True
        return info


def _type_name(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "COMBO"
    return str(value)


def _input_spec(node: str, name: str, section: str, value: Any) -> InputSpec:
    if section == "hidden":
        return InputSpec(name, str(value), section)
    if isinstance(value, str):  # a bare type name, as some packs write it
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise NodeDefinitionError(f"{node}: input {name!r} must be a tuple (TYPE, options), got {value!r}")
    kind = value[0]
    options = value[1] if len(value) > 1 and isinstance(value[1], Mapping) else {}
    if isinstance(kind, (list, tuple)):
        return InputSpec(name, "COMBO", section, options, tuple(kind))
    if kind == "COMBO":
        return InputSpec(name, "COMBO", section, options, tuple(options.get("options", ())))
    return InputSpec(name, str(kind), section, options)


def _jsonable_section(section: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in section.items():
        if isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[name] = value
    return out
