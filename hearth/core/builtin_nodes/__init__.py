"""The builtin nodes plugin (default tier, registered ``trylast``; a pack replaces a builtin only where the user allows it)."""

from __future__ import annotations

from hearth.core.builtin_nodes import image_io, image_ops, math_nodes, primitives, strings
from hearth.core.hookspecs import hookimpl

MODULES = (primitives, strings, math_nodes, image_io, image_ops)


@hookimpl(trylast=True)
def register_nodes() -> dict[str, type]:
    nodes: dict[str, type] = {}
    for module in MODULES:
        nodes.update(module.NODES)
    return nodes
