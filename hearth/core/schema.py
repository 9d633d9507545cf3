"""Hearth's typed schema API for new nodes: declare a node with a :class:`Schema`, write a plain function.

Example::

    from hearth.core.schema import Input, Output, Schema, node

    @node(Schema("StringRepeat", category="utils/string",
                 inputs=[Input.string("text"), Input.int("times", default=2, min=0, max=100)],
                 outputs=[Output("STRING", "text")]))
    def string_repeat(text: str, times: int) -> str:
        return text * times

The decorator returns a class with the ComfyUI V1 shape, so the executor, ``/object_info`` and ComfyUI-format
tools treat both kinds of node alike. The function may be ``async``; it returns a single value (one output), a
tuple (several outputs) or a :class:`NodeOutput` (values plus UI data, or a subgraph to expand).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_UNSET = object()


@dataclass(frozen=True)
class Input:
    """One input of a schema node. Use the constructors (``Input.int``, ``Input.combo``, ``Input.of``...)."""

    name: str
    type: str
    optional: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    choices: Sequence[Any] | None = None

    def spec(self) -> tuple[Any, ...]:
        options = dict(self.options)
        if self.choices is not None:
            return (list(self.choices), options) if options else (list(self.choices),)
        return (self.type, options) if options else (self.type,)

    @staticmethod
    def _opts(**kwargs: Any) -> dict[str, Any]:
        names = {"force_input": "forceInput"}
        return {names.get(k, k): v for k, v in kwargs.items() if v is not _UNSET}

    @classmethod
    def int(cls, name: str, *, default: Any = 0, min: Any = _UNSET, max: Any = _UNSET, step: Any = _UNSET,
            tooltip: Any = _UNSET, optional: bool = False, lazy: Any = _UNSET, force_input: Any = _UNSET,
            **extra: Any) -> Input:
        return cls(name, "INT", optional, cls._opts(default=default, min=min, max=max, step=step, tooltip=tooltip,
                                                    lazy=lazy, force_input=force_input, **extra))

    @classmethod
    def float(cls, name: str, *, default: Any = 0.0, min: Any = _UNSET, max: Any = _UNSET, step: Any = _UNSET,
              round: Any = _UNSET, tooltip: Any = _UNSET, optional: bool = False, lazy: Any = _UNSET,
              force_input: Any = _UNSET, **extra: Any) -> Input:
        return cls(name, "FLOAT", optional, cls._opts(default=default, min=min, max=max, step=step, round=round,
                                                      tooltip=tooltip, lazy=lazy, force_input=force_input, **extra))

    @classmethod
    def string(cls, name: str, *, default: Any = "", multiline: Any = _UNSET, tooltip: Any = _UNSET,
               optional: bool = False, lazy: Any = _UNSET, force_input: Any = _UNSET, **extra: Any) -> Input:
        return cls(name, "STRING", optional, cls._opts(default=default, multiline=multiline, tooltip=tooltip,
                                                       lazy=lazy, force_input=force_input, **extra))

    @classmethod
    def boolean(cls, name: str, *, default: Any = False, tooltip: Any = _UNSET, optional: bool = False,
                lazy: Any = _UNSET, **extra: Any) -> Input:
        return cls(name, "BOOLEAN", optional, cls._opts(default=default, tooltip=tooltip, lazy=lazy, **extra))

    @classmethod
    def combo(cls, name: str, choices: Sequence[Any], *, default: Any = _UNSET, tooltip: Any = _UNSET,
              optional: bool = False, **extra: Any) -> Input:
        return cls(name, "COMBO", optional, cls._opts(default=default, tooltip=tooltip, **extra), list(choices))

    @classmethod
    def of(cls, type: str, name: str, *, optional: bool = False, lazy: Any = _UNSET, tooltip: Any = _UNSET,
           **extra: Any) -> Input:
        """An input that arrives by link, of any registered type (``"IMAGE"``, ``"LATENT"``, ``"*"``)."""
        return cls(name, type, optional, cls._opts(lazy=lazy, tooltip=tooltip, **extra))


@dataclass(frozen=True)
class Output:
    type: str
    name: str | None = None
    is_list: bool = False
    tooltip: str | None = None


@dataclass(frozen=True)
class Schema:
    """Everything the registry and the executor need to know about a node, declared in one place."""

    name: str
    inputs: Sequence[Input] = ()
    outputs: Sequence[Output] = ()
    display_name: str | None = None
    category: str = "hearth"
    description: str = ""
    output_node: bool = False
    not_idempotent: bool = False
    input_is_list: bool = False
    hidden: Sequence[str] = ()  # e.g. ("UNIQUE_ID", "PROMPT"), passed as unique_id=..., prompt=...
    is_changed: Callable[..., Any] | None = None
    validate: Callable[..., Any] | None = None


@dataclass
class NodeOutput:
    """A node's result with extras: UI data for ``executed`` events, or a subgraph to expand in place."""

    values: tuple[Any, ...] = ()
    ui: Mapping[str, Any] | None = None
    expand: Mapping[str, Any] | None = None

    def __init__(self, *values: Any, ui: Mapping[str, Any] | None = None, expand: Mapping[str, Any] | None = None):
        self.values, self.ui, self.expand = values, ui, expand

    def to_v1(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.values}
        if self.ui is not None:
            out["ui"] = self.ui
        if self.expand is not None:
            out["expand"] = self.expand
        return out


def _to_v1_result(value: Any, n_outputs: int) -> Any:
    if isinstance(value, NodeOutput):
        return value.to_v1()
    if n_outputs == 0 and value is None:
        return ()
    if n_outputs == 1 and not isinstance(value, tuple):
        return (value,)
    return value


def node(schema: Schema) -> Callable[[Callable[..., Any]], type]:
    """Turn a function into a node class of the V1 shape, described by ``schema``."""

    def wrap(fn: Callable[..., Any]) -> type:
        n_outputs = len(schema.outputs)
        hidden = {kind.lower(): kind for kind in schema.hidden}

        def input_types(cls: type) -> dict[str, Any]:
            sections: dict[str, Any] = {"required": {}}
            for item in schema.inputs:
                sections.setdefault("optional" if item.optional else "required", {})[item.name] = item.spec()
            if hidden:
                sections["hidden"] = dict(hidden)
            return sections

        if inspect.iscoroutinefunction(fn):
            async def execute(self: Any, **kwargs: Any) -> Any:
                return _to_v1_result(await fn(**kwargs), n_outputs)
        else:
            def execute(self: Any, **kwargs: Any) -> Any:
                return _to_v1_result(fn(**kwargs), n_outputs)

        attrs: dict[str, Any] = {
            "INPUT_TYPES": classmethod(input_types),
            "RETURN_TYPES": tuple(o.type for o in schema.outputs),
            "RETURN_NAMES": tuple(o.name or o.type for o in schema.outputs),
            "OUTPUT_IS_LIST": tuple(o.is_list for o in schema.outputs),
            "FUNCTION": "execute",
            "CATEGORY": schema.category,
            "DESCRIPTION": schema.description or (inspect.getdoc(fn) or ""),
            "OUTPUT_NODE": schema.output_node,
            "NOT_IDEMPOTENT": schema.not_idempotent,
            "INPUT_IS_LIST": schema.input_is_list,
            "DISPLAY_NAME": schema.display_name or schema.name,
            "SCHEMA": schema,
            "execute": execute,
            "__module__": fn.__module__,
            "__doc__": fn.__doc__,
        }
        tooltips = [o.tooltip or "" for o in schema.outputs]
        if any(tooltips):
            attrs["OUTPUT_TOOLTIPS"] = tuple(tooltips)
        if schema.is_changed is not None:
            attrs["IS_CHANGED"] = classmethod(lambda cls, **kw: schema.is_changed(**kw))
        if schema.validate is not None:
            attrs["VALIDATE_INPUTS"] = classmethod(lambda cls, **kw: schema.validate(**kw))
        return type(schema.name, (), attrs)

    return wrap
