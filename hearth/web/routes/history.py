"""Finished work: /history in ComfyUI's shape (the jobs API, one list of every prompt, is in ``jobs.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from hearth.web.boundary import HistoryOffset, PageSize
from hearth.web.routes import clear_or_delete, get_state
from hearth.web.runtime import ServerState

router = APIRouter()


@router.get("/history")
async def get_history(max_items: PageSize = None, offset: HistoryOffset = -1,
                      state: ServerState = Depends(get_state)) -> dict[str, Any]:
    return state.history.get(max_items=max_items, offset=offset)


@router.get("/history/{prompt_id}")
async def get_history_entry(prompt_id: str, state: ServerState = Depends(get_state)) -> dict[str, Any]:
    return state.history.get(prompt_id)  # ComfyUI answers {} for an unknown id


@router.post("/history")
async def post_history(request: Request, state: ServerState = Depends(get_state)) -> Response:
    await clear_or_delete(request, state.history.clear, state.history.delete)
    return Response(status_code=200)
