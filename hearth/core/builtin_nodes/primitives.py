"""Primitive value nodes, with ComfyUI's names: a typed constant that other nodes link to (and ComfyUI's Seed)."""

from __future__ import annotations

import sys

from hearth.core.schema import Input, Output, Schema, node

CATEGORY = "utils/primitive"


@node(Schema("PrimitiveInt", category=CATEGORY, display_name="Int",
             inputs=[Input.int("value", default=0, min=-sys.maxsize, max=sys.maxsize, control_after_generate="fixed")],
             outputs=[Output("INT")]))
def primitive_int(value: int) -> int:
    return value


@node(Schema("PrimitiveFloat", category=CATEGORY, display_name="Float",
             inputs=[Input.float("value", default=0.0, min=-sys.maxsize, max=sys.maxsize, step=0.1)],
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


@node(Schema("SeedNode", category="utilities", display_name="Seed",
             inputs=[Input.int("seed", min=0, max=sys.maxsize, control_after_generate="fixed",
                               component="SetRandomInt")],
             outputs=[Output("INT", "seed")]))
def seed_node(seed: int) -> int:
    """ComfyUI's Seed: a seed widget (the browser's SetRandomInt component; fixed after each run by default)."""
    return seed


NODES = {cls.__name__: cls for cls in (primitive_int, primitive_float, primitive_string, primitive_string_multiline,
                                        primitive_boolean, seed_node)}
