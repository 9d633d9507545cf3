"""Hearth's own API for its UI, under /hearth/...: installed packs, workflow conversion, memory and devices."""

from __future__ import annotations

from typing import Any

import psutil
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from hearth.core.executor import PromptFormatError
from hearth.core.executor.workflow import is_ui_workflow, ui_to_api
from hearth.web.routes import BadRequest, get_state, json_body
from hearth.web.runtime import ServerState, memory_manager

router = APIRouter(prefix="/hearth")


@router.get("/plugins")
async def plugins(state: ServerState = Depends(get_state)) -> dict[str, Any]:
    """Every plugin and pack with its node count and load error, and which pack provides each node."""
    records = [record.as_dict() for record in state.plugins.records.values()]
    nodes = {name: definition.plugin for name, definition in state.registry.items()}
    return {"plugins": sorted(records, key=lambda r: (r["tier"], r["name"])), "nodes": nodes,
            "warnings": list(state.plugins.warnings)}


@router.post("/workflow")
async def workflow(request: Request, state: ServerState = Depends(get_state)) -> dict[str, Any]:
    """Turn a workflow file of either format into ``{prompt, workflow}`` ready for POST /prompt."""
    data = await json_body(request, kind="invalid_prompt")
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data:
        return {"prompt": data["prompt"], "workflow": None}  # a saved /prompt body
    if not is_ui_workflow(data):
        if not isinstance(data, dict):
            raise BadRequest("invalid_prompt", "A workflow file must hold a JSON object.")
        return {"prompt": data, "workflow": None}
    try:
        prompt = await run_in_threadpool(ui_to_api, data, state.registry)
    except (PromptFormatError, AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        # The conversion only reads the client's JSON: any of these means a field of the wrong shape.
        raise BadRequest("invalid_prompt", "Not a valid UI-format workflow", f"{type(exc).__name__}: {exc}",
                         field="workflow") from None
    return {"prompt": prompt, "workflow": data}


def _memory(state: ServerState) -> dict[str, Any]:
    manager = memory_manager(state.runtime)
    if manager is not None:
        return {"source": "hearth.core.models", **manager.status()}
    memory = psutil.virtual_memory()
    return {"source": "psutil", "devices": [{"name": "cpu", "type": "cpu", "vram_total": memory.total,
                                             "vram_free": memory.available}], "models": [], "stats": {}}


@router.get("/memory")
async def memory(state: ServerState = Depends(get_state)) -> dict[str, Any]:
    return await run_in_threadpool(_memory, state)
