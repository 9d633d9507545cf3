"""The HTTP API by domain; each module's ``router`` is mounted bare and under ``/api``, as ComfyUI serves it."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from hearth.web.runtime import ServerState
from hearth.web.security import api_error


def get_state(request: Request) -> ServerState:
    """The server state, for ``Depends``."""
    return request.app.state.hearth


def error_response(status: int, kind: str, message: str, details: str = "") -> JSONResponse:
    return JSONResponse(api_error(kind, message, details), status_code=status)


class BadRequest(Exception):
    """Raised by :func:`json_body`; the app turns it into a 400 in ComfyUI's error shape."""

    def __init__(self, kind: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.kind, self.message, self.details = kind, message, details


async def json_body(request: Request, *, kind: str = "invalid_request", default: Any = None) -> Any:
    """The request's JSON body; malformed JSON is a 400 naming the line and column, never a 500."""
    raw = await request.body()
    if not raw.strip():
        if default is not None:
            return default
        raise BadRequest(kind, "Request body is empty; expected JSON.")
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise BadRequest(kind, "Request body is not UTF-8 JSON.", str(exc)) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(kind, "Request body is not valid JSON.",
                         f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise BadRequest(kind, "Request body is nested too deeply.") from None


async def clear_or_delete(request: Request, clear: Any, delete: Any) -> None:
    """``POST /queue`` and ``POST /history``: ``{"clear": true}`` and/or ``{"delete": [prompt_id, ...]}``."""
    body = await json_body(request, default={})
    if not isinstance(body, dict):
        raise BadRequest("invalid_request", "Expected {\"clear\": true} or {\"delete\": [prompt_id, ...]}.")
    if body.get("clear"):
        clear()
    ids = body.get("delete")
    if ids is not None:
        if not isinstance(ids, list):
            raise BadRequest("invalid_request", "'delete' must be a list of prompt ids.")
        delete(str(p) for p in ids)
