"""The event hub: WebSocket clients, and executor events turned into ComfyUI's JSON and binary frames.

The executor runs in a worker thread and emits through a plain callback; :class:`EventHub` hops each message onto
the server's event loop, serializes it once, and queues it for every client it is meant for. Execution events go
to the client that submitted the prompt (all clients when it gave no ``client_id``, as ComfyUI does); ``status``
goes to everyone. A client that stops reading loses progress frames first and is disconnected when its backlog
fills with anything else, so one slow browser never holds up the worker or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from hearth.web.boundary import storable

log = logging.getLogger("hearth.web")

BACKLOG = 4096  # messages queued per client before it counts as stuck
DRAIN_BATCH = 256  # messages from the worker delivered per turn of the event loop
DROPPABLE = frozenset({"progress", "progress_state", "preview"})  # what a slow client can miss without harm
# progress_state lists every node of the prompt, so sending it on every event made a prompt's cost grow with the
# square of its size: changes are coalesced into at most one message per interval, and the last one goes out
# before the prompt's final events. The interval grows with the node count: a message costs 5-20 microseconds a node
# to build, compress and send, so one per 500 microseconds a node keeps them to a few percent of the run whatever
# its size (every 0.1 s up to 200 nodes; every 5 s at 10,000, where each message is about 1.5 MB).
PROGRESS_STATE_INTERVAL = 0.1
PROGRESS_STATE_SECONDS_PER_NODE = 500e-6
FINAL_EVENTS = frozenset({"execution_success", "execution_error", "execution_interrupted"})

# Binary frame types and image types (ComfyUI's numbering).
PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
IMAGE_TYPES = {"JPEG": (1, "image/jpeg"), "PNG": (2, "image/png")}


def event_text(event: str, data: Any) -> str:
    """``{"type": event, "data": data}`` as strict JSON: a NaN or odd object in a node's output would otherwise
    reach the browser as text its JSON.parse rejects, and a lone surrogate as text that is not Unicode.

    Nearly every event is plain JSON already, so it is dumped directly and repaired (by :func:`storable`, a walk of
    the whole value) only when dumping fails or the text holds a ``\\ud...`` escape: a lone surrogate, or a pair
    (an emoji) that the careful walk passes through unchanged. Integers of any size stay numbers, as ComfyUI sends
    them; JSON.parse reads them.
    """
    message = {"type": event, "data": data}
    try:
        text = json.dumps(message, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is None or "\\ud" in text:
        return json.dumps(storable(message, max_int=None), allow_nan=False)
    return text


@dataclass(eq=False)
class Client:
    sid: str
    websocket: WebSocket
    queue: asyncio.Queue[str | bytes | None] = field(default_factory=lambda: asyncio.Queue(BACKLOG))
    features: dict[str, Any] = field(default_factory=dict)

    @property
    def wants_preview_metadata(self) -> bool:
        return bool(self.features.get("supports_preview_metadata"))


class EventHub:
    """Connected clients by id, and thread-safe publishing to them."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.dropped = 0
        # Messages from other threads wait here; one loop callback delivers all that arrived meanwhile, so a burst
        # of node events costs one wake-up of the event loop, not one each.
        self._inbox: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._inbox_lock = threading.Lock()
        self._drain_scheduled = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # -- clients ---------------------------------------------------------------------------------------------

    def add(self, sid: str, websocket: WebSocket) -> Client:
        old = self.clients.get(sid)
        if old is not None and not old.queue.full():  # a reconnect under the same id replaces the stale socket
            old.queue.put_nowait(None)
        client = Client(sid, websocket)
        self.clients[sid] = client
        return client

    def remove(self, client: Client) -> None:
        if self.clients.get(client.sid) is client:
            del self.clients[client.sid]

    async def pump(self, client: Client) -> None:
        """Send what is queued for ``client`` until it disconnects or is dropped."""
        while True:
            message = await client.queue.get()
            if message is None:  # replaced by a reconnect, or dropped for not reading
                with contextlib.suppress(Exception):
                    await client.websocket.close(code=1008)
                return
            if isinstance(message, str):
                await client.websocket.send_text(message)
            else:
                await client.websocket.send_bytes(message)
            self.sent += 1

    # -- publishing (any thread) -----------------------------------------------------------------------------

    def listening(self, sid: str | None) -> bool:
        """Whether a message for ``sid`` (every client when None) would reach anyone now (safe from any thread)."""
        return bool(self.clients) if sid is None else sid in self.clients

    def publish(self, event: str, data: Any, sid: str | None = None) -> None:
        """Send ``{"type": event, "data": data}`` to client ``sid``, or to every client when ``sid`` is None."""
        if not self.listening(sid):  # nobody to serialize it for
            return
        self.publish_text(event_text(event, data), event, sid)

    def publish_text(self, text: str, kind: str, sid: str | None = None) -> None:
        """Send an already-serialized message of kind ``kind`` (an event name) to ``sid`` or everyone."""
        self._from_any_thread(self._deliver, text, kind, sid)

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the event loop after ``delay`` seconds (from any thread)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.call_later, delay, fn)

    def publish_with(self, build: Callable[[Client], str | bytes | None], kind: str, sid: str | None) -> None:
        """Send a per-client message (binary previews differ by what the client said it supports)."""
        self._from_any_thread(self._deliver_built, build, kind, sid)

    def _from_any_thread(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._drain(limit=None)  # what other threads sent first goes first
            fn(*args)
            return
        with self._inbox_lock:
            self._inbox.append((fn, args))
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop closed meanwhile: the server is stopping, nobody is left to send to
            pass

    def _drain(self, limit: int | None = DRAIN_BATCH) -> None:
        # At most DRAIN_BATCH messages per turn of the loop: the clients' pumps send between turns, so a worker
        # that emits faster than one turn delivers never fills a reading client's backlog (which would drop it).
        with self._inbox_lock:
            count = len(self._inbox) if limit is None else min(limit, len(self._inbox))
            waiting = [self._inbox.popleft() for _ in range(count)]
            more = bool(self._inbox)
            self._drain_scheduled = more
        for fn, args in waiting:
            fn(*args)
        loop = self.loop
        if more and loop is not None and not loop.is_closed():
            loop.call_soon(self._drain)

    def _targets(self, sid: str | None) -> list[Client]:
        if sid is None:
            return list(self.clients.values())
        client = self.clients.get(sid)
        return [client] if client is not None else []

    def _deliver(self, message: str | bytes, kind: str, sid: str | None) -> None:
        for client in self._targets(sid):
            self._offer(client, message, kind)

    def _deliver_built(self, build: Callable[[Client], str | bytes | None], kind: str, sid: str | None) -> None:
        for client in self._targets(sid):
            message = build(client)
            if message is not None:
                self._offer(client, message, kind)

    def send(self, client: Client, event: str, data: Any) -> None:
        """Queue one message for one client (from the event loop), with the usual backlog rule."""
        self._offer(client, event_text(event, data), event)

    def _offer(self, client: Client, message: str | bytes, kind: str) -> None:
        if client.queue.qsize() < BACKLOG - 1:
            client.queue.put_nowait(message)
            return
        self.dropped += 1
        if kind not in DROPPABLE:
            log.warning("websocket client %s is not reading; disconnecting it", client.sid)
            self.remove(client)
            client.queue.put_nowait(None)  # the last free slot is kept for this


def encode_preview(preview: Any) -> tuple[str, bytes] | None:
    """(mime type, encoded bytes) of a node's preview: a PIL image, ComfyUI's ``(format, image, max_size)``
    tuple, or already-encoded PNG/JPEG bytes; ``None`` for anything else."""
    if isinstance(preview, (bytes, bytearray)):
        data = bytes(preview)
        if data.startswith(b"\x89PNG"):
            return "image/png", data
        if data.startswith(b"\xff\xd8"):
            return "image/jpeg", data
        return None
    fmt, image, max_size = "JPEG", preview, None
    if isinstance(preview, (tuple, list)) and len(preview) >= 2:
        fmt, image = str(preview[0]).upper(), preview[1]
        max_size = preview[2] if len(preview) > 2 else None
    if fmt not in IMAGE_TYPES or not hasattr(image, "save"):
        return None
    if max_size:
        image = image.copy()
        image.thumbnail((int(max_size), int(max_size)))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=fmt, quality=95) if fmt == "JPEG" else image.save(buffer, format=fmt)
    return IMAGE_TYPES[fmt][1], buffer.getvalue()


def preview_frame(client: Client, mime: str, image: bytes, meta: dict[str, Any]) -> bytes:
    """The binary frame for one preview, with metadata when the client announced it understands it."""
    if client.wants_preview_metadata:
        header = json.dumps({**meta, "image_type": mime}).encode()
        return struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(header)) + header + image
    image_type = 2 if mime == "image/png" else 1
    return struct.pack(">II", PREVIEW_IMAGE, image_type) + image


class ExecutionEvents:
    """The executor's ``emit`` callback for the server: routes events to the submitting client.

    Also keeps the ``progress_state`` map (every node of the running prompt with its state and progress) that
    ComfyUI's newer frontend reads to draw per-node progress.
    """

    def __init__(self, hub: EventHub, client_of: Callable[[str], str | None]) -> None:
        self.hub = hub
        self.client_of = client_of
        self._lock = threading.Lock()
        self._prompt: str | None = None
        self._sid: str | None = None
        self._nodes: dict[str, dict[str, Any]] = {}
        self._running: set[str] = set()  # the nodes in state "running"
        self._changed = False  # the nodes changed since the last progress_state sent
        self._sent_at = 0.0
        self._timer = False  # a coalesced send is scheduled

    def emit(self, event: str, data: dict[str, Any]) -> None:
        prompt_id = data.get("prompt_id")
        with self._lock:
            if prompt_id != self._prompt:
                self._prompt, self._sid, self._nodes, self._changed = prompt_id, self.client_of(prompt_id), {}, False
                self._running = set()
            sid = self._sid
            if self._track(event, data):
                self._changed = True
        if event == "progress" and "preview" in data:
            data = dict(data)
            self._preview(data.pop("preview"), data, sid)
        if event in FINAL_EVENTS or (event == "executing" and data.get("node") is None):
            self._send_state()  # the prompt's last state goes before its end
        elif self._changed:
            self._state_changed()
        self.hub.publish(event, data, sid)

    def _state_changed(self) -> None:
        if not self.hub.listening(self._sid):  # kept as changed: the next change after someone connects sends it
            return
        interval = max(PROGRESS_STATE_INTERVAL, len(self._nodes) * PROGRESS_STATE_SECONDS_PER_NODE)
        wait = self._sent_at + interval - time.monotonic()
        if wait <= 0:
            self._send_state()
            return
        with self._lock:
            if self._timer:
                return
            self._timer = True
        self.hub.later(wait, self._timer_fired)

    def _timer_fired(self) -> None:
        with self._lock:
            self._timer = False
        self._send_state()

    def _send_state(self) -> None:
        """Send the running prompt's ``progress_state`` if it changed since the last one (any thread)."""
        with self._lock:
            if not self._changed:
                return
            self._changed = False
            self._sent_at = time.monotonic()
            sid = self._sid
            if not self.hub.listening(sid):
                return
            # Serialized under the lock (the worker cannot change a node meanwhile): no copy of every node's entry.
            text = event_text("progress_state", {"prompt_id": self._prompt, "nodes": self._nodes})
        self.hub.publish_text(text, "progress_state", sid)

    def resume_for(self, sid: str) -> dict[str, Any] | None:
        """The ``executing`` event to replay to a client that reconnects while its prompt runs, as ComfyUI does."""
        with self._lock:
            if self._sid != sid or self._prompt is None:
                return None
            running = [n for n in self._running if self._nodes[n]["state"] == "running"]
            if not running:
                return None
            entry = self._nodes[running[-1]]
            return {"node": running[-1], "display_node": entry["display_node_id"], "prompt_id": self._prompt}

    def _preview(self, preview: Any, data: dict[str, Any], sid: str | None) -> None:
        try:
            encoded = encode_preview(preview)
        except Exception:  # a broken preview must not fail the node that sent it
            log.warning("could not encode a preview from node %s", data.get("node"), exc_info=True)
            return
        if encoded is None:
            return
        mime, image = encoded
        node = data.get("node")
        meta = {"node_id": node, "prompt_id": data.get("prompt_id"), "display_node_id": node,
                "parent_node_id": None, "real_node_id": node}
        self.hub.publish_with(lambda client: preview_frame(client, mime, image, meta), "preview", sid)

    def _track(self, event: str, data: dict[str, Any]) -> bool:
        """Update the nodes' states from one event (under the lock); whether anything changed."""
        nodes = self._nodes
        if event == "executing":
            node = data.get("node")
            for running in self._running:  # the node that ran before this one (a set, not a walk of all nodes)
                if nodes[running]["state"] == "running":
                    nodes[running]["state"] = "finished"
            self._running = set() if node is None else {node}
            if node is None:
                return True
            nodes[node] = {"value": 0, "max": 1, "state": "running", "node_id": node,
                           "display_node_id": data.get("display_node") or node, "parent_node_id": None,
                           "real_node_id": node, "prompt_id": data.get("prompt_id")}
        elif event == "progress" and data.get("node") in nodes:
            nodes[data["node"]].update(value=data.get("value"), max=data.get("max"))
        elif event == "executed" and data.get("node") in nodes:
            nodes[data["node"]]["state"] = "finished"
        elif event == "execution_error" and data.get("node_id") in nodes:
            nodes[data["node_id"]]["state"] = "error"
        else:
            return False
        return True
