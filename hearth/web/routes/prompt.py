"""Queueing work: POST/GET /prompt, GET/POST /queue, POST /interrupt and POST /free, in ComfyUI's shapes."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from hearth.core.executor import PromptFormatError, parse_prompt
from hearth.web.boundary import SafeJSONResponse, prompt_request
from hearth.web.routes import BadRequest, clear_or_delete, get_state, json_body
from hearth.web.runtime import ServerState

router = APIRouter()


@router.get("/prompt")
async def get_prompt(state: ServerState = Depends(get_state)) -> dict[str, Any]:
    return {"exec_info": {"queue_remaining": state.queue_remaining()}}


@router.post("/prompt")
async def post_prompt(request: Request, state: ServerState = Depends(get_state)) -> Any:
    body = await json_body(request, kind="invalid_prompt")
    handled = False
    if isinstance(body, dict):
        for _, handlers in state.plugins.collect("register_prompt_handlers"):
            for handler in handlers:  # plugins (custom-node packs' on-prompt handlers) may rewrite the prompt first
                body, handled = handler(body), True
    # Every field checked (values again only if a handler had the body): nothing after this can fail to store or
    # encode.
    wanted = prompt_request(body, checked=not handled)
    extra_data = wanted.extra_data
    extra_data.setdefault("create_time", int(time.time() * 1000))
    prompt_id = wanted.prompt_id or str(uuid.uuid4())
    if state.queue.contains(prompt_id):
        raise BadRequest("invalid_prompt", f"A prompt with id {prompt_id} is already queued.",
                         "Send a new prompt_id, or none to get one.", field="prompt_id")

    try:
        nodes = parse_prompt(wanted.prompt)
        validation = await run_in_threadpool(state.executor.validator.validate, nodes, wanted.targets)
    except PromptFormatError as exc:
        raise BadRequest("invalid_prompt", "Invalid prompt", str(exc), field="prompt") from None
    except RecursionError:
        raise BadRequest("invalid_prompt", "Invalid prompt", "the prompt is nested too deeply", field="prompt") \
            from None
    if not validation.ok:
        return SafeJSONResponse(validation.response(), status_code=400)
    # The queue writes the prompt to the database before the worker can see it: accepted means stored.
    item = state.queue.put(wanted.prompt, validation.outputs, prompt_id=prompt_id, extra_data=extra_data,
                           number=wanted.number, front=wanted.front, nodes=nodes)
    state.broadcast_status()
    return {"prompt_id": item.prompt_id, "number": item.number, "node_errors": validation.node_errors}


@router.get("/queue")
async def get_queue(state: ServerState = Depends(get_state)) -> dict[str, Any]:
    return {"queue_running": [item.as_list() for item in state.queue.running()],
            "queue_pending": [item.as_list() for item in state.queue.pending()]}


@router.post("/queue")
async def post_queue(request: Request, state: ServerState = Depends(get_state)) -> Response:
    await clear_or_delete(request, state.queue.clear, state.queue.delete)
    state.broadcast_status()
    return Response(status_code=200)


@router.post("/interrupt")
async def interrupt(request: Request, state: ServerState = Depends(get_state)) -> Response:
    body = await json_body(request, default={})
    wanted = body.get("prompt_id") if isinstance(body, dict) else None
    running = [item.prompt_id for item in state.queue.running()]
    # With a prompt_id, only that prompt is stopped: a stale Cancel must not kill the next user's run.
    if running and (wanted is None or wanted in running):
        state.executor.interrupt()
    return Response(status_code=200)


@router.post("/free")
async def free(request: Request, state: ServerState = Depends(get_state)) -> Response:
    body = await json_body(request, default={})
    if not isinstance(body, dict):
        raise BadRequest("invalid_request", "Expected {\"unload_models\": bool, \"free_memory\": bool}.")
    state.worker.request_free(bool(body.get("unload_models")), bool(body.get("free_memory")))
    return Response(status_code=200)
