"""Where the compatibility plugin reaches the pack host it was lent.

A plugin imports ``core``'s public API only, so this plugin never imports the sandbox. The parent's side of the pack
host (``PackHost``, ``HostConfig``, ...) comes from the Runtime: the composition root lends it as
``RuntimeOptions.pack_hosts`` (the CLI passes ``hearth.sandbox.host``), and the plugin manager loading the packs
carries it as ``pack_hosts``. Inside a host, the host's own runtime (``register_proxy``, ``emit``,
``interrupted``...) is handed to the entry, :func:`hearth_comfy_compat.host_side.entry`, which keeps it here.
"""

from __future__ import annotations

from typing import Any

from hearth.core.runtime import current_runtime

UNLENT = "this Runtime was built without pack hosts (RuntimeOptions.pack_hosts); the CLI lends them"
_in_host: dict[str, Any] = {}


def host_api(plugins: Any = None) -> Any:
    """The pack host API: the loading manager's, else the active Runtime's; ``None`` when none was lent."""
    api = getattr(plugins, "pack_hosts", None)
    if api is not None:
        return api
    runtime = current_runtime()
    return runtime.options.pack_hosts if runtime is not None else None


def isolation_available(plugins: Any = None) -> tuple[bool, str]:
    """Whether packs can run isolated here, and why not: no API lent, or the machine cannot make the namespaces."""
    api = host_api(plugins)
    if api is None:
        return False, UNLENT
    return api.isolation_available()


def set_host_runtime(runtime: Any) -> None:
    """Inside a pack host: keep the host's runtime the entry was handed."""
    _in_host["runtime"] = runtime


def host_runtime() -> Any:
    """Inside a pack host: ``register_proxy``, ``emit``, ``interrupted``, ``current_node``, ``TrustRequired``."""
    try:
        return _in_host["runtime"]
    except KeyError:
        raise RuntimeError("the pack host's runtime is used outside a pack host") from None

