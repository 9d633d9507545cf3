"""The WebSocket at ``/ws?clientId=``: ComfyUI's ``status`` greeting, feature flags, then events from the hub.

Text the client sends is only read for ``feature_flags``; anything else (garbage included) is ignored, so a
misbehaving client cannot disturb the server or anyone else's events.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from hearth.web.boundary import BadRequest, parse_json
from hearth.web.routes.nodes import server_features

router = APIRouter()
log = logging.getLogger("hearth.web")


@router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    state = ws.app.state.hearth
    sid = ws.query_params.get("clientId") or uuid.uuid4().hex
    await ws.accept()
    client = state.hub.add(sid, ws)
    # Every send goes through the client's queue and its one pump task: Starlette sockets are not safe to send
    # on from two tasks at once.
    state.hub.send(client, "status", {**state.status(), "sid": sid})
    resumed = state.events.resume_for(sid)
    if resumed is not None:  # a page reload mid-prompt picks the running node up again
        state.hub.send(client, "executing", resumed)
    pump = asyncio.create_task(state.hub.pump(client))
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                continue
            try:
                data = parse_json(text)  # the boundary's rules: what a client sends here is never echoed broken
            except BadRequest:
                log.debug("ignored a WebSocket message from %s that is not JSON the server takes", sid)
                continue
            if isinstance(data, dict) and data.get("type") == "feature_flags" and isinstance(data.get("data"), dict):
                client.features = data["data"]
                state.hub.send(client, "feature_flags", server_features(state))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        state.hub.remove(client)
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
