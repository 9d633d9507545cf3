"""An in-process cache of public read responses, so hot reads skip routing, the database and JSON encoding.

Why it is safe: only anonymous GETs of public read routes are cached, and only when the registry is not
private. Every write through this process (publish, upload, moderation, verification) clears the whole cache
before its response is sent, so a client never reads its own write stale. Writes made elsewhere (another
server process, `comfy registry admin` on the database) all add an audit-log row, and with it bump the change
counter in the same transaction (processes.py); `ChangeWatcher` polls that counter and clears the cache when it
moves, so every committed write shows within the watch interval, whatever order writers took ids and committed
in. `ttl` bounds everything else (download counts). `ttl = 0` turns caching off.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

log = logging.getLogger("registry.cache")

# Read routes whose answer depends only on the URL (and Accept, for the simple index).
CACHEABLE = re.compile(r"^/(nodes(/|$)|comfy-nodes/|simple/|api/v1/(search|packs/|node-classes/|publishers/))")
INSTALL = re.compile(r"^/nodes/[^/]+/install$")


@dataclass
class _Entry:
    expires: float
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    generation: int


class ResponseCache:
    def __init__(self, ttl: float, max_entries: int = 20_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0  # bumped by clear(): a response computed before a write is never stored after it
        self.hits = 0

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def get(self, key: tuple) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires < time.monotonic():
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple, entry: _Entry) -> None:
        with self._lock:
            if entry.generation != self.generation:
                return
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class CacheMiddleware:
    """ASGI middleware in front of the app; `on_install(path)` counts installs served from the cache."""

    def __init__(self, app, cache: ResponseCache, on_install=None):  # noqa: ANN001
        self.app = app
        self.cache = cache
        self.on_install = on_install

    async def __call__(self, scope, receive, send):  # noqa: ANN001, ANN204
        if scope["type"] != "http" or self.cache.ttl <= 0:
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD"):
            async def clear_then_send(message):  # noqa: ANN001, ANN202
                # Clear before the client hears back: its next read must not find a pre-write answer.
                if message["type"] == "http.response.start":
                    self.cache.clear()
                await send(message)

            try:
                return await self.app(scope, receive, clear_then_send)
            finally:
                self.cache.clear()  # any write may change any read
        headers = dict(scope["headers"])
        if not CACHEABLE.match(path) or b"authorization" in headers or b"cookie" in headers:
            return await self.app(scope, receive, send)
        key = (method, path, scope.get("query_string", b""), headers.get(b"accept", b""),
               headers.get(b"host", b""))
        entry = self.cache.get(key)
        if entry is not None:
            if self.on_install and INSTALL.match(path) and entry.status == 200:
                self.on_install(path)
            await send({"type": "http.response.start", "status": entry.status, "headers": entry.headers})
            await send({"type": "http.response.body", "body": entry.body})
            return None
        generation = self.cache.generation
        captured: dict = {"body": []}

        async def capture(message):  # noqa: ANN001, ANN202
            if message["type"] == "http.response.start":
                captured["status"], captured["headers"] = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
                if not message.get("more_body") and captured.get("status") in (200, 301, 404):
                    self.cache.put(key, _Entry(time.monotonic() + self.cache.ttl, captured["status"],
                                               captured["headers"], b"".join(captured["body"]), generation))
            await send(message)

        return await self.app(scope, receive, capture)


class ChangeWatcher:
    """Clears the cache when another process commits a write: each one moves the change counter."""

    def __init__(self, engine, cache: ResponseCache, interval: float):  # noqa: ANN001
        self.engine, self.cache, self.interval = engine, cache, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="cache-watch", daemon=True)
        self.last: int | None = None

    def newest(self) -> int:
        from hearth.registry_server.processes import change_counter

        return change_counter(self.engine)

    def check(self) -> bool:
        """Clear the cache if the change counter moved since the last check; returns whether it did."""
        newest = self.newest()
        moved = self.last is not None and newest != self.last
        self.last = newest
        if moved:
            self.cache.clear()
        return moved

    def start(self) -> None:
        self.check()
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.check()
            except Exception:  # a database hiccup must not end cache invalidation for the process's life
                log.exception("change watch failed; clearing the cache to be safe")
                self.cache.clear()
