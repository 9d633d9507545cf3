"""Primitive value nodes, with ComfyUI's names: a typed constant that other nodes link to."""

from __future__ import annotations

import sys

from hearth.core.schema import Input, Output, Schema, node

CATEGORY = "utils/primitive"


@node(Schema("PrimitiveInt", category=CATEGORY, display_name="Int",
             inputs=[Input.int("value", default=0, min=-sys.maxsize, max=sys.maxsize, control_after_generate=True)],
             outputs=[Output("INT")]))
def primitive_int(value: int) -> int:
    return value


@node(Schema("PrimitiveFloat", category=CATEGORY, display_name="Float",
             inputs=[Input.float("value", default=0.0, min=-sys.maxsize, max=sys.maxsize)],
             outputs=[Output("FLOAT")]))
def primitive_float(value: float) -> float:
    return value


@node(Schema("PrimitiveString", category=CATEGORY, display_name="String",
             inputs=[Input.string("value")], outputs=[Output("STRING")]))
def primitive_string(value: str) -> str:
    return value


@node(Schema("PrimitiveStringMultiline", category=CATEGORY, display_name="String (Multiline)",
             inputs=[Input.string("value", multiline=True)], outputs=[Output("STRING")]))
def primitive_string_multiline(value: str) -> str:
    return value


@node(Schema("PrimitiveBoolean", category=CATEGORY, display_name="Boolean",
             inputs=[Input.boolean("value")], outputs=[Output("BOOLEAN")]))
def primitive_boolean(value: bool) -> bool:
    return value


NODES = {cls.__name__: cls for cls in (primitive_int, primitive_float, primitive_string, primitive_string_multiline,
                                        primitive_boolean)}
