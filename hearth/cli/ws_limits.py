"""uvicorn's WebSocket protocol with a close that arrives: a frame over the size limit gets a 1009 the client reads.

uvicorn (websockets-sansio) answers a frame over ``ws_max_size``, compressed or not, by writing the 1009 close frame
and closing the socket at once. The client is usually still sending that frame, so the socket closes with unread
data and the kernel answers with a reset, which destroys the close frame in flight: the client sees the
connection go silent or reset, never the 1009. RFC 6455 7.1.7 (and websockets' own server) instead half-closes:
send the close frame and EOF, read and discard what the client still sends until it closes or a timeout passes.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

WS_MAX_SIZE = 16 * 1024 * 1024  # the largest message `comfy serve` takes, compressed or not (after inflating)
# How long a failed connection may keep draining the rest of a refused frame before the socket is closed anyway.
DRAIN_SECONDS = 10.0


class LimitedWebSocketProtocol(WebSocketsSansIOProtocol):
    """``uvicorn.run(ws=LimitedWebSocketProtocol, ws_max_size=...)``: refusals of a frame reach the client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.draining = False

    def data_received(self, data: bytes) -> None:
        if self.draining:
            return  # the rest of a refused frame: RFC 6455 forbids processing it, and reading it avoids a reset
        super().data_received(data)

    def handle_parser_exception(self) -> None:
        close = self.conn.close_sent
        if close is None:  # the parser failed before a close could be sent (a network error): nothing to tell
            super().handle_parser_exception()
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": close.code, "reason": close.reason})
        # data_to_send() ends with b"" for EOF once the protocol failed: write the frames, then half-close.
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.close_sent = True
        self.draining = True
        self.stop_keepalive()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # When the client has read the close it closes its side; eof_received (uvicorn's, a no-op) then lets asyncio
        # close the transport. The timer bounds a client that never does.
        self.close_timer = self.loop.call_later(DRAIN_SECONDS, self.transport.close)
