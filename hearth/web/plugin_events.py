"""What plugins get of ``comfy serve`` beyond routes: the ``on_server_start`` / ``on_server_stop`` hooks, with an
events carrier to the server's WebSocket clients (ComfyUI packs' ``PromptServer.send_sync`` goes through it)."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from hearth.web.events import PREVIEW_IMAGE, EventHub, encode_preview

log = logging.getLogger("hearth.web")
# ComfyUI's binary frame types whose data may be a preview image still to encode.
UNENCODED_PREVIEW_IMAGE = 2


class HubEvents:
    """Carries a plugin's events to the server's WebSocket clients (the ``events`` of ``on_server_start``)."""

    def __init__(self, hub: EventHub, client_of: Callable[[str | None], str | None]) -> None:
        self.hub = hub
        self._client_of = client_of

    @property
    def loop(self) -> Any:
        return self.hub.loop

    def publish(self, event: str, data: Any, sid: str | None) -> None:
        self.hub.publish(event, data, sid)

    def publish_binary(self, event: int, data: Any, sid: str | None) -> None:
        if event in (PREVIEW_IMAGE, UNENCODED_PREVIEW_IMAGE) and not isinstance(data, (bytes, bytearray)):
            encoded = encode_preview(data)  # ComfyUI's (format, PIL image, max size) tuple
            if encoded is None:
                log.warning("a plugin's preview image that cannot be encoded was dropped")
                return
            mime, image = encoded
            frame = struct.pack(">II", PREVIEW_IMAGE, 2 if mime == "image/png" else 1) + image
        else:
            frame = struct.pack(">I", event) + bytes(data)
        self.hub.publish_with(lambda client: frame, "binary", sid)

    def client_of(self, prompt_id: str | None) -> str | None:
        return self._client_of(prompt_id)


def start(app: Any, state: Any) -> HubEvents:
    """Tell the plugins the server is built (``on_server_start``); returns the events carrier they were given."""
    events = HubEvents(state.hub, state.client_of)
    state.plugins.notify("on_server_start", app=app, events=events, queue=state.queue)
    return events


def stop(app: Any, state: Any, events: HubEvents) -> None:
    state.plugins.notify("on_server_stop", app=app, events=events)
