"""The event hub in-process: a client that stops reading loses progress first, then is dropped; others are unaffected."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from hearth.web.events import BACKLOG, EventHub, encode_preview


class StuckSocket:
    """A WebSocket whose peer never reads: every send blocks."""

    def __init__(self) -> None:
        self.closed = False

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int = 1000) -> None:
        self.closed = True


class Socket:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int = 1000) -> None:
        pass


def test_a_stuck_client_loses_progress_then_is_dropped_without_hurting_others() -> None:
    async def scenario() -> None:
        hub = EventHub()
        hub.bind(asyncio.get_running_loop())
        stuck, healthy = hub.add("stuck", StuckSocket()), hub.add("ok", Socket())  # type: ignore[arg-type]
        pumps = [asyncio.create_task(hub.pump(c)) for c in (stuck, healthy)]
        for step in range(BACKLOG + 50):
            hub.publish("progress", {"value": step, "max": BACKLOG + 50})
            if step % 500 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert hub.dropped >= 50 and "stuck" in hub.clients  # progress is droppable
        assert len(healthy.websocket.sent) == BACKLOG + 50  # type: ignore[attr-defined]
        hub.publish("executed", {"node": "1"})
        await asyncio.sleep(0.05)
        assert "stuck" not in hub.clients and "ok" in hub.clients
        assert healthy.websocket.sent[-1] == {"type": "executed", "data": {"node": "1"}}  # type: ignore[attr-defined]
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)

    asyncio.run(scenario())


def test_publishing_from_another_thread_reaches_the_client() -> None:
    async def scenario() -> None:
        hub = EventHub()
        hub.bind(asyncio.get_running_loop())
        client = hub.add("a", Socket())  # type: ignore[arg-type]
        pump = asyncio.create_task(hub.pump(client))
        await asyncio.to_thread(hub.publish, "status", {"x": 1}, "a")
        await asyncio.to_thread(hub.publish, "status", {"x": 2}, "nobody")
        await asyncio.sleep(0.05)
        assert client.websocket.sent == [{"type": "status", "data": {"x": 1}}]  # type: ignore[attr-defined]
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)

    asyncio.run(scenario())


def test_encode_preview_forms() -> None:
    from PIL import Image

    image = Image.new("RGB", (600, 300), (1, 2, 3))
    mime, data = encode_preview(("PNG", image, 100)) or ("", b"")
    assert mime == "image/png" and Image.open(io.BytesIO(data)).size == (100, 50)
    assert encode_preview(image)[0] == "image/jpeg"  # type: ignore[index]
    assert encode_preview(b"\x89PNG....") == ("image/png", b"\x89PNG....")
    assert encode_preview("not an image") is None and encode_preview(("GIF", image)) is None
