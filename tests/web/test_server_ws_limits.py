"""A WebSocket message over ``comfy serve``'s 16 MiB limit gets a 1009 close the client reads, compressed or not."""

from __future__ import annotations

import json
import os

import pytest
from hearth_server import HearthServer
from websockets.exceptions import ConnectionClosed

from hearth.cli.ws_limits import WS_MAX_SIZE

OVER = WS_MAX_SIZE + 1024 * 1024  # 17 MiB


@pytest.mark.parametrize("compression", ["deflate", None])
@pytest.mark.parametrize("payload", ["compressible", "random", "fragmented"])
def test_message_over_the_limit_gets_1009(server: HearthServer, compression: str | None, payload: str) -> None:
    # "random" does not compress, so its compressed frame on the wire is itself over the limit; "compressible"
    # is a few KB on the wire and 17 MiB once inflated; "fragmented" is many small frames adding up to too much.
    data = os.urandom(OVER) if payload == "random" else b"x" * OVER
    with server.ws(compression=compression, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "status"
        with pytest.raises(ConnectionClosed) as closed:
            if payload == "fragmented":
                ws.send(data[i:i + 1024 * 1024] for i in range(0, OVER, 1024 * 1024))
            else:
                ws.send(data)
            while True:  # the server's close arrives while reading; a silent connection times out instead
                ws.recv(timeout=20)
    assert closed.value.rcvd is not None, "the server's close frame never arrived"
    assert closed.value.rcvd.code == 1009
    with server.ws() as ws:  # and the server goes on serving
        assert json.loads(ws.recv(timeout=10))["type"] == "status"


def test_message_under_the_limit_is_read(server: HearthServer) -> None:
    with server.ws(compression="deflate", max_size=None) as ws:
        ws.recv(timeout=10)
        ws.send(json.dumps({"type": "feature_flags", "data": {"pad": "x" * (WS_MAX_SIZE // 2)}}))
        assert json.loads(ws.recv(timeout=20))["type"] == "feature_flags"
