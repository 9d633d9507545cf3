"""The HTTP API by domain; each module's ``router`` is mounted bare and under ``/api``, as ComfyUI serves it."""

from __future__ import annotations

from typing import Any

from fastapi import Request

# Routes take requests through the boundary only: its parser, its refusal and its error shape.
from hearth.web.boundary import BadRequest, error_response, identifier, json_body
from hearth.web.runtime import ServerState

__all__ = ["BadRequest", "clear_or_delete", "error_response", "get_state", "json_body"]


def get_state(request: Request) -> ServerState:
    """The server state, for ``Depends``."""
    return request.app.state.hearth


async def clear_or_delete(request: Request, clear: Any, delete: Any) -> None:
    """``POST /queue`` and ``POST /history``: ``{"clear": true}`` and/or ``{"delete": [prompt_id, ...]}``."""
    body = await json_body(request, default={})
    if not isinstance(body, dict):
        raise BadRequest("invalid_request", "Expected {\"clear\": true} or {\"delete\": [prompt_id, ...]}.")
    ids = body.get("delete")
    if ids is not None and not isinstance(ids, list):
        raise BadRequest("invalid_request", "'delete' must be a list of prompt ids.", field="delete")
    wanted = [identifier(p, "delete[]") for p in ids or []]  # all checked before anything changes
    if body.get("clear"):
        clear()
    if ids is not None:
        delete(wanted)
