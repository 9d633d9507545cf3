"""ComfyUI's ``comfy_api.feature_flags``: what a connected client, and this server, say they support.

``sockets_metadata`` is the server's record of each WebSocket client (``{sid: {"feature_flags": {...}}}``); a pack
asks ``supports_feature(server.sockets_metadata, server.client_id, "supports_preview_metadata")`` before sending a
newer kind of message, and falls back when the answer is no. The answers are read from the mapping given, so a
client nobody recorded supports nothing, as in ComfyUI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _server_flags() -> dict[str, Any]:
    from hearth_comfy_compat.cli_args import args

    return {"max_upload_size": round(args.max_upload_size * 1024 * 1024)}


SERVER_FEATURE_FLAGS: dict[str, Any] = _server_flags()


def get_connection_feature(sockets_metadata: Mapping[str, Any] | None, sid: str | None, feature_name: str,
                           default: Any = False) -> Any:
    """Client ``sid``'s value of ``feature_name``, or ``default`` when the client or the flag is unknown."""
    client = (sockets_metadata or {}).get(sid) if sid is not None else None
    flags = client.get("feature_flags") if isinstance(client, Mapping) else None
    return flags.get(feature_name, default) if isinstance(flags, Mapping) else default


def supports_feature(sockets_metadata: Mapping[str, Any] | None, sid: str | None, feature_name: str) -> bool:
    """Whether client ``sid`` said it supports ``feature_name`` (its flag is exactly True)."""
    return get_connection_feature(sockets_metadata, sid, feature_name, False) is True


def get_server_features() -> dict[str, Any]:
    """The flags this server announces to clients."""
    return dict(SERVER_FEATURE_FLAGS)
