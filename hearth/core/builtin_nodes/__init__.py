"""The builtin nodes plugin (default tier, registered ``trylast``; a pack replaces a builtin only where the user allows it).

Every module of this package that exports ``NODES`` contributes its nodes.
"""

from __future__ import annotations

from hearth.core.hookspecs import hookimpl
from hearth.core.nodes import collect_nodes


@hookimpl(trylast=True)
def register_nodes() -> dict[str, type]:
    return collect_nodes(__package__, prefix="")
