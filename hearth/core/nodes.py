"""The node contract: ComfyUI's V1 node classes, read into one normalized description per node type.

A V1 class declares ``INPUT_TYPES`` (a classmethod returning ``required`` / ``optional`` / ``hidden`` sections),
``RETURN_TYPES``, ``FUNCTION`` and optional attributes (``RETURN_NAMES``, ``OUTPUT_NODE``, ``INPUT_IS_LIST``,
``OUTPUT_IS_LIST``, ``NOT_IDEMPOTENT``, ``IS_CHANGED``, ``VALIDATE_INPUTS``, ``check_lazy_status``, ...). Hearth's
own schema API (:mod:`hearth.core.schema`) produces classes of the same shape, so the executor knows one contract.

Type names are read as ComfyUI compares them. A pack's type object is never compared with ``==`` or looked up in a
set: packs pass ``str`` subclasses whose ``__ne__`` (and often ``__eq__``) claims equality with everything -- the
"any type" trick (``class AnyType(str): def __ne__(self, other): return False``) of rgthree, KJNodes, Impact,
ComfyUI-Logic... -- which ComfyUI's ``validate_node_input`` honours through ``not received != expected``. Such a
type is read as ``"*"`` (:func:`type_name`), which links accept from and to anything; a combo is known by its list
of choices (or the ``"COMBO"`` type with an ``options`` list), never by asking the type object. A type object with
rules of its own that is no plain wildcard (VideoHelperSuite's ``MultiInput``) is kept beside its name and asked
about each link (:func:`types_match`). Sections that claim names they do not list (:class:`InputSpecs`) and
``RETURN_TYPES`` that answer past their end (:meth:`NodeDefinition.output_type`) are honoured as ComfyUI honours
them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hearth.core.types import ANY

# Besides the plain widgets, the inputs ComfyUI's frontend draws as widgets and saves in widgets_values: the
# recorder (the uploaded file's name), the colour picker ("#rrggbb"), colour lists, and the bounding-box editors.
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "AUDIO_RECORD", "COLOR", "COLORS",
                          "BOUNDING_BOX", "BOUNDING_BOXES"})
AUTOGROW = "COMFY_AUTOGROW_V3"  # ComfyUI's V3 growing input: its members arrive as "name.member" inputs
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
    # The pack's own type object where it may compare by rules of its own (a str subclass that is no plain
    # wildcard, e.g. VideoHelperSuite's MultiInput("IMAGE", ["IMAGE", "LATENT"])); links are checked against it.
    declared: Any = field(default=None, compare=False, repr=False)

    @property
    def is_widget(self) -> bool:
        """True when the value is typed in the node (a widget) rather than arriving by link only."""
        return self.type in WIDGET_TYPES and not self.options.get("forceInput", False)

    @property
    def lazy(self) -> bool:
        return bool(self.options.get("lazy", False))


class InputSpecs(dict):
    """The declared inputs by name -- and, as in ComfyUI, any name a section claims without listing it.

    rgthree's ``FlexibleOptionalInputType`` (Any Switch, Power Lora Loader, context nodes...) and similar ``dict``
    subclasses answer ``name in section`` with True for every name and give ``(TYPE,)`` for it, so a node takes as
    many inputs as the frontend adds (``any_01``, ``lora_3``...); VideoHelperSuite's ``ContainsAll`` hidden section
    lets Video Combine take the format widgets its frontend adds. ComfyUI hands a node every prompt input its
    sections contain (required, optional, then hidden); so does the executor, through ``in`` and ``get`` here.
    Iterating, ``values()`` and ``len`` see the declared inputs only: validation checks those, as ComfyUI's does.
    """

    def __init__(self, declared: Mapping[str, InputSpec], node: str, raw: Mapping[str, Any]) -> None:
        super().__init__(declared)
        self._node = node
        self._open = [(section, raw[section]) for section in ("required", "optional", "hidden")
                      if isinstance(raw.get(section), Mapping) and type(raw[section]) is not dict]
        self._claimed: dict[str, InputSpec | None] = {}

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or (isinstance(name, str) and self._claim(name) is not None)

    def __missing__(self, name: str) -> InputSpec:
        spec = self._claim(name) if isinstance(name, str) else None
        if spec is None:
            raise KeyError(name)
        return spec

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def _claim(self, name: str) -> InputSpec | None:
        if not self._open:
            return None
        if name not in self._claimed:
            spec = None
            for section, mapping in self._open:
                try:
                    if name in mapping:
                        spec = _input_spec(self._node, name, section, mapping[name])
                        break
                except Exception:  # noqa: BLE001 - a section that cannot answer claims nothing
                    continue
            self._claimed[name] = spec
        return self._claimed[name]


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
                raise NodeDefinitionError(f"node class {self.name!r} ({getattr(cls, '__qualname__', cls)!s}) has no "
                                          f"{attr}; see the node contract")
        if not hasattr(cls, cls.FUNCTION):
            raise NodeDefinitionError(f"node class {self.name!r} declares FUNCTION={cls.FUNCTION!r} but has no such method")
        self.return_types: tuple[str, ...] = tuple(type_name(t) for t in cls.RETURN_TYPES)
        # The pack's own type objects where they may compare by rules of their own (see InputSpec.declared).
        self.return_objects: tuple[Any, ...] = tuple(_own_rules(t) for t in cls.RETURN_TYPES)
        # A RETURN_TYPES that answers past its end (Impact's, rgthree's and Easy-Use's ByPassTypeTuple): the node
        # has as many outputs as the frontend gives it, each of the type RETURN_TYPES[slot] answers.
        self.open_outputs: bool = type(cls.RETURN_TYPES) not in (tuple, list)
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

    def output_type(self, slot: int) -> tuple[str, Any] | None:
        """The type name of output ``slot`` and the pack's own type object if it compares by its own rules
        (else ``None``); ``None`` for a slot the node does not have. Past the declared outputs only an
        :attr:`open_outputs` RETURN_TYPES answers, as ComfyUI reads ``RETURN_TYPES[slot]``."""
        if 0 <= slot < len(self.return_types):
            return self.return_types[slot], self.return_objects[slot]
        if slot < 0 or not self.open_outputs:
            return None
        try:
            found = self.cls.RETURN_TYPES[slot]
        except Exception:  # noqa: BLE001 - IndexError, or a pack's __getitem__ failing: no such output
            return None
        return type_name(found), _own_rules(found)

    def inputs(self) -> NodeInputs:
        """Read ``INPUT_TYPES`` and normalize it."""
        try:
            raw = self.cls.INPUT_TYPES()
        except NodeDefinitionError:  # already says which node and what is wrong with it
            raise
        except Exception as exc:  # a pack's INPUT_TYPES that raises must not take the registry down
            raise NodeDefinitionError(f"{self.name}.INPUT_TYPES() raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise NodeDefinitionError(f"{self.name}.INPUT_TYPES() must return a dict, got {type(raw).__name__}")
        specs: dict[str, InputSpec] = {}
        for section in ("required", "optional", "hidden"):
            for name, value in (raw.get(section) or {}).items():
                specs[name] = _input_spec(self.name, name, section, value)
        return NodeInputs(InputSpecs(specs, self.name, raw), raw)

    def object_info(self) -> dict[str, Any]:
        """Describe the node in the shape of ComfyUI's ``/object_info/{class}`` entry; raises
        :class:`NodeDefinitionError` when its ``INPUT_TYPES`` does."""
        return self._info(self.inputs().raw)

    def broken_info(self, problem: str) -> dict[str, Any]:
        """The entry of a node whose ``INPUT_TYPES`` fails (``problem``: why), for listings that name such nodes
        rather than drop them (``comfy nodes``): what the class itself says, no inputs, and ``"error"``."""
        return self._info({}) | {"error": problem}

    def _info(self, raw: Mapping[str, Any]) -> dict[str, Any]:
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


_PROBE = "\x00hearth: a type name no node declares\x00"


def is_wildcard(value: Any) -> bool:
    """Whether a pack's type object matches every type under ComfyUI's rule (``not received != expected``): a
    ``str`` subclass whose ``__ne__`` denies a difference even from a name no node declares."""
    if not isinstance(value, str) or type(value) is str:
        return False
    try:
        return not (value != _PROBE)
    except Exception:  # noqa: BLE001 - a pack's comparison that raises is no wildcard
        return False


def _own_rules(value: Any) -> Any:
    """``value`` if it is a type object that may compare by rules of its own (a str subclass, no plain
    wildcard), else ``None``."""
    return value if isinstance(value, str) and type(value) is not str and not is_wildcard(value) else None


def type_name(value: Any) -> str:
    """The plain type name of a pack's type object: ``"COMBO"`` for a list of choices, ``"*"`` for an "any type"
    (:func:`is_wildcard`), the string itself (never a subclass) otherwise; ``"INT,FLOAT"`` stays a union."""
    if isinstance(value, (list, tuple)):
        return "COMBO"
    if is_wildcard(value):
        return ANY
    if isinstance(value, str):
        return str.__str__(value)
    return str(value)



MATCH_TYPE = "COMFY_MATCHTYPE_V3"  # ComfyUI V3's io.MatchType: the frontend checks these links, the backend never


def types_match(received: Any, expected: Any, strict: bool = False) -> bool:
    """ComfyUI's ``validate_node_input(received_type, input_type, strict)`` on a pack's own type objects.

    Equal under ``not received != expected`` (so an "any type" on either side matches); ``"*"`` on either side
    (Hearth also takes the frontend's wildcard, which ComfyUI's backend leaves to the frontend); a V3 MatchType;
    otherwise both are comma-separated unions that must overlap -- or, ``strict``, every received member must be
    expected. Anything else (a list of choices against a name) does not match.
    """
    try:
        if not received != expected:
            return True
    except Exception:  # noqa: BLE001 - a pack's comparison that raises is no match
        return False
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    received, expected = type_name(received), type_name(expected)
    if ANY in (received, expected) or MATCH_TYPE in (received, expected):
        return True
    given = {t.strip() for t in received.split(",")}
    wanted = {t.strip() for t in expected.split(",")}
    if ANY in given or ANY in wanted:
        return True
    return given <= wanted if strict else bool(given & wanted)


# -- INPUT_TYPES across a process boundary (a pack host describes its nodes to Hearth) ----------------------------

OPEN_SECTIONS = "__hearth_open_sections__"  # the key of a portable INPUT_TYPES that records its open sections


class OpenSection(dict):
    """Hearth's own form of a section that claims every name (rgthree's ``FlexibleOptionalInputType``): it lists
    the declared inputs, and any other name is an input of ``spec`` (``("*",)`` for an "any" one)."""

    def __init__(self, declared: Mapping[str, Any], spec: Any) -> None:
        super().__init__(declared)
        self.spec = tuple(spec) if isinstance(spec, list) else spec

    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> Any:
        return self.spec


def portable_return_types(types: Any) -> tuple[Any, ...]:
    """``RETURN_TYPES`` that keep their meaning as plain data (JSON, another process): an "any type" becomes
    ``"*"``, a ``str`` subclass a plain ``str``; lists of choices stay lists."""
    return tuple(t if isinstance(t, (list, tuple)) else type_name(t) for t in types)


def portable_input_types(raw: Any) -> Any:
    """``INPUT_TYPES()`` as plain data that keeps its meaning once decoded elsewhere: each input's type object as
    its plain name (an "any type" as ``"*"``), sections as plain dicts, and a section that claims every name
    recorded under :data:`OPEN_SECTIONS` with the spec it gives other names. :func:`restored_input_types` turns it
    back into sections that claim those names. Anything that is not a mapping is returned as it is."""
    if not isinstance(raw, Mapping):
        return raw
    out: dict[str, Any] = {key: value for key, value in raw.items() if key not in ("required", "optional", "hidden")}
    opened: dict[str, Any] = {}
    for section in ("required", "optional", "hidden"):
        mapping = raw.get(section)
        if not isinstance(mapping, Mapping):
            if mapping is not None:
                out[section] = mapping
            continue
        plain = {}
        for name, value in mapping.items():
            if section == "hidden" or isinstance(value, str):
                plain[name] = type_name(value) if isinstance(value, str) else value
            elif isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
                plain[name] = (type_name(value[0]), *value[1:])
            else:
                plain[name] = value
        out[section] = plain
        if type(mapping) is not dict:
            try:
                if _PROBE in mapping:
                    claimed = mapping[_PROBE]
                    first = claimed[0] if isinstance(claimed, (list, tuple)) and claimed else claimed
                    rest = tuple(claimed[1:]) if isinstance(claimed, (list, tuple)) else ()
                    if isinstance(first, str):
                        first = type_name(first)
                    opened[section] = [first, *rest]
            except Exception:  # noqa: BLE001 - a section that cannot answer claims nothing
                pass
    if opened:
        out[OPEN_SECTIONS] = opened
    return out


def restored_input_types(portable: Any) -> Any:
    """The INPUT_TYPES a :func:`portable_input_types` result stands for: open sections claim every name again."""
    if not isinstance(portable, Mapping) or OPEN_SECTIONS not in portable:
        return portable
    out = {key: value for key, value in portable.items() if key != OPEN_SECTIONS}
    for section, spec in dict(portable[OPEN_SECTIONS]).items():
        out[section] = OpenSection(out.get(section) or {}, spec)
    return out


def _input_spec(node: str, name: str, section: str, value: Any) -> InputSpec:
    if section == "hidden":
        if isinstance(value, (list, tuple)):  # a claimed name of an open hidden section: (None, {}) and the like
            value = value[0] if value else None
        return InputSpec(name, type_name(value) if isinstance(value, str) else ANY, section)
    if isinstance(value, str):  # a bare type name, as some packs write it
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise NodeDefinitionError(f"{node}: input {name!r} must be a tuple (TYPE, options), got {value!r}")
    kind = value[0]
    options = value[1] if len(value) > 1 and isinstance(value[1], Mapping) else {}
    if isinstance(kind, (list, tuple)):
        return InputSpec(name, "COMBO", section, options, tuple(kind))
    declared = _own_rules(kind)
    kind = type_name(kind)  # a plain str from here on: comparing it is safe
    if kind == "COMBO":
        return InputSpec(name, "COMBO", section, options, tuple(options.get("options", ())))
    return InputSpec(name, kind, section, options, declared=declared)


def _jsonable_section(section: Mapping[str, Any]) -> dict[str, Any]:
    """An ``INPUT_TYPES`` section as ``/object_info`` shows it: tuples as lists, and each input's type as its plain
    name (an "any type" object as ``"*"``, which is what the frontend links anything to)."""
    out = {}
    for name, value in section.items():
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            value = [type_name(value[0]), *value[1:]]
        elif isinstance(value, str):
            value = type_name(value)
        if isinstance(value, (list, tuple)):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[name] = value
    return out


def collect_nodes(package: str, prefix: str = "nodes_") -> dict[str, type]:
    """Every node class the modules of ``package`` whose names start with ``prefix`` export as ``NODES``.

    A plugin's ``register_nodes`` returns ``collect_nodes(__package__)``, so adding a ``nodes_*.py`` module is all
    it takes to add its nodes. Modules load in name order; two modules naming one node type with different classes
    is a mistake in the plugin, refused with both module names.
    """
    import importlib
    import pkgutil

    found: dict[str, type] = {}
    origin: dict[str, str] = {}
    root = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda info: info.name):
        if not info.name.startswith(prefix) or info.ispkg:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for name, cls in getattr(module, "NODES", {}).items():
            if name in found and found[name] is not cls:
                raise NodeDefinitionError(f"{package}: node type {name!r} is defined twice, in {origin[name]} and "
                                          f"{module.__name__}; keep one")
            found.setdefault(name, cls)
            origin.setdefault(name, module.__name__)
    return found
