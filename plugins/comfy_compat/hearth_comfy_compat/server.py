"""ComfyUI's ``server`` module: ``PromptServer.instance``, through which packs add routes and send events.

Packs write, at module level::

    from server import PromptServer
    from aiohttp import web

    @PromptServer.instance.routes.get("/my_pack/items")
    async def items(request):
        return web.json_response({"items": [...]})

and, inside nodes, ``PromptServer.instance.send_sync("my_pack.progress", {...})``. The instance exists whether or
not a server runs, so those module-level decorators always work. ``comfy serve`` mounts the recorded routes (bare
and under ``/api``, as ComfyUI does) and attaches its event hub: from then on ``send_sync`` reaches the browser's
WebSocket; without a server (``comfy run``) events are logged at debug level and dropped.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from hearth.core import context
from hearth_comfy_compat import aiohttp_web as web
from hearth_comfy_compat import hook

log = logging.getLogger("hearth.comfy_compat")


class BinaryEventTypes(enum.IntEnum):
    """The type word that starts each binary WebSocket frame (ComfyUI's numbering)."""

    PREVIEW_IMAGE = 1
    UNENCODED_PREVIEW_IMAGE = 2
    TEXT = 3
    PREVIEW_IMAGE_WITH_METADATA = 4


class Transport(Protocol):
    """What a running server hands :meth:`PromptServer.attach`: the ``events`` of the ``on_server_start`` hook."""

    loop: asyncio.AbstractEventLoop | None

    def publish(self, event: str, data: Any, sid: str | None) -> None: ...

    def publish_binary(self, event: int, data: Any, sid: str | None) -> None: ...

    def client_of(self, prompt_id: str | None) -> str | None: ...


class PromptQueue:
    """The parts of ComfyUI's ``PromptServer.instance.prompt_queue`` packs read: what is running and waiting."""

    def __init__(self, server: PromptServer) -> None:
        self._server = server

    def _queue(self) -> Any:
        queue = self._server.queue
        if queue is None:
            raise RuntimeError("no prompt queue: Hearth's server is not running (comfy serve starts one)")
        return queue

    def get_tasks_remaining(self) -> int:
        """Prompts running and waiting; 0 without a server."""
        queue = self._server.queue
        return queue.remaining() if queue is not None else 0

    def get_current_queue(self) -> tuple[list[Any], list[Any]]:
        queue = self._queue()
        return [item.as_list() for item in queue.running()], [item.as_list() for item in queue.pending()]

    def get_current_queue_volatile(self) -> tuple[list[Any], list[Any]]:
        return self.get_current_queue()

    def wipe_queue(self) -> None:
        self._queue().clear()


class PromptServer:
    """The one server object packs talk to; see the module docstring."""

    instance: PromptServer

    def __init__(self) -> None:
        self.routes = web.RouteTableDef()
        self.app = web.Application()
        self.prompt_queue = PromptQueue(self)
        self.on_prompt_handlers: list[Callable[[dict[str, Any]], dict[str, Any]]] = []
        self.supports = ["custom_nodes_from_web"]
        self.number = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.queue: Any = None  # the running server's queue (hearth.web.store.PersistentQueue)
        self._transport: Transport | None = None
        self._client_id: str | None = None
        self._lock = threading.Lock()

    # -- the running server --------------------------------------------------------------------------------

    def attach(self, transport: Transport, loop: asyncio.AbstractEventLoop | None = None, queue: Any = None) -> None:
        """Called by ``comfy serve`` when it starts: events now reach its WebSocket clients."""
        with self._lock:
            self._transport, self._loop, self.queue = transport, loop, queue

    def detach(self, transport: Transport) -> None:
        with self._lock:
            if self._transport is transport:
                self._transport, self._loop, self.queue = None, None, None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The server's event loop (packs schedule work on it from node threads); without a server, the loop
        running the current prompt, if any."""
        loop = getattr(self._transport, "loop", None) or self._loop
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        return loop

    @loop.setter
    def loop(self, value: asyncio.AbstractEventLoop | None) -> None:
        self._loop = value

    @property
    def client_id(self) -> str | None:
        """The WebSocket client id of the prompt now running (the one that submitted it), else ``None``."""
        ctx = context.current()
        transport = self._transport
        if ctx is not None and transport is not None:
            return transport.client_of(ctx.prompt_id)
        return self._client_id

    @client_id.setter
    def client_id(self, value: str | None) -> None:
        self._client_id = value

    @property
    def last_node_id(self) -> str | None:
        ctx = context.current()
        return ctx.node_id if ctx is not None else None

    @property
    def last_prompt_id(self) -> str | None:
        ctx = context.current()
        return ctx.prompt_id if ctx is not None else None

    # -- events --------------------------------------------------------------------------------------------

    def send_sync(self, event: str | int, data: Any, sid: str | None = None) -> None:
        """Send ``{"type": event, "data": data}`` to client ``sid`` (every client when ``None``); from any thread.

        A :class:`BinaryEventTypes` event sends ``data`` (bytes) as a binary frame instead.
        """
        transport = self._transport
        if transport is None:
            log.debug("no server running; event %r dropped", event)
            return
        if isinstance(event, int):
            transport.publish_binary(int(event), data, sid)
            return
        transport.publish(str(event), data, sid)

    async def send(self, event: str | int, data: Any, sid: str | None = None) -> None:
        self.send_sync(event, data, sid)

    async def send_json(self, event: str, data: Any, sid: str | None = None) -> None:
        self.send_sync(event, data, sid)

    def send_progress_text(self, text: str | bytes, node_id: str, sid: str | None = None) -> None:
        """Text shown on a node while it runs: a binary TEXT frame (node id length, node id, UTF-8 text)."""
        body = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        node = str(node_id).encode("utf-8")
        self.send_sync(BinaryEventTypes.TEXT, struct.pack(">I", len(node)) + node + body,
                       sid if sid is not None else self.client_id)

    def get_queue_info(self) -> dict[str, Any]:
        """``{"exec_info": {"queue_remaining": n}}``, the body of ComfyUI's ``status`` event."""
        return {"exec_info": {"queue_remaining": self.prompt_queue.get_tasks_remaining()}}

    def queue_updated(self) -> None:
        """Tell the clients the queue changed (a pack that queued or removed prompts itself)."""
        self.send_sync("status", {"status": self.get_queue_info()})

    @property
    def max_upload_size(self) -> int:
        """ComfyUI's upload limit in bytes (``--max-upload-size``, in MB)."""
        from hearth_comfy_compat.cli_args import args

        return round(args.max_upload_size * 1024 * 1024)

    # -- prompts -------------------------------------------------------------------------------------------

    def add_on_prompt_handler(self, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """``handler(body) -> body`` runs on every ``POST /prompt`` body before it is validated."""
        self.on_prompt_handlers.append(handler)

    def trigger_on_prompt(self, body: dict[str, Any]) -> dict[str, Any]:
        """Run the on-prompt handlers in order; one that raises is logged and skipped, as ComfyUI does."""
        latest = {_identity(h): h for h in self.on_prompt_handlers}  # a pack loaded twice registered twice
        for handler in latest.values():
            try:
                result = handler(body)
            except Exception:
                log.exception("an on-prompt handler (%s) raised; the prompt goes on without it",
                              getattr(handler, "__qualname__", handler))
                continue
            if isinstance(result, dict):
                body = result
        return body

    def __getattr__(self, name: str) -> Any:
        # Parts of ComfyUI's server Hearth does not have (user_manager, internal_routes...): the pack loads, and
        # the code touching one fails naming it, as for any internal Hearth lacks.
        if name.startswith("_"):
            raise AttributeError(name)
        full = f"server.PromptServer.instance.{name}"
        caller = sys._getframe(1)
        if hook._probing(caller):  # hasattr(server, "user_manager"): a probe, not a need
            raise hook.HearthDoesNotProvide(f"Hearth does not provide {full}")
        raise hook.HearthDoesNotProvide(hook._record(hook._pack_of(caller), full))

    # -- routes --------------------------------------------------------------------------------------------

    def route_definitions(self) -> list[tuple[Any, bool]]:
        """Every route and static folder packs added, each with whether it also gets an ``/api`` twin.

        A pack loaded again in the same process (a second plugin manager, tests) registers its routes again;
        the latest registration of a method and path wins, so requests reach the pack's current module.
        """
        latest: dict[Any, tuple[Any, bool]] = {}
        for definitions, api_twin in ((self.routes, True), (self.app.routes, False)):
            for definition in definitions:
                if getattr(definition, "prefix", None) is not None and getattr(definition, "handler", None) is None:
                    key: Any = ("static", definition.prefix)
                else:
                    key = (getattr(definition, "method", None), getattr(definition, "path", None), api_twin)
                latest.pop(key, None)
                latest[key] = (definition, api_twin)
        return list(latest.values())


def _identity(handler: Any) -> Any:
    """The same for one handler registered by two loads of its pack; different for two handlers."""
    code = getattr(handler, "__code__", None)
    if code is None:
        return id(handler)
    return (getattr(handler, "__module__", None), code.co_filename, code.co_firstlineno,
            getattr(handler, "__qualname__", None))


PromptServer.instance = PromptServer()
