"""The jobs API: ``/jobs`` (pending, running and finished prompts in one list) and ``/jobs/{id}``, in ComfyUI's shape.

The official frontend's Job Queue and Media Assets panels read these and check every item against a schema: a
job is ``{id, status, create_time, priority, outputs_count, previewable_outputs_count, workflow_id, ...}`` with
``null`` fields left out (as ComfyUI's ``prune_dict``), and ``preview_output`` is one output item with the node it
came from (``nodeId``) and the kind of output it is (``mediaType``). One bad item fails the whole answer, so what
history holds (anything a node returned) is reduced here to what the schema accepts.

Statuses, filters, sorting and paging follow ComfyUI's ``comfy_execution/jobs.py``: an interrupted prompt is
``cancelled``; ``sort_by`` is ``created_at`` (``create_time``) or ``execution_duration``; the total counts every
match before ``offset`` and ``limit`` cut the page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hearth.core.executor.queue import QueueItem
from hearth.web.boundary import MAX_PAGE, PageOffset, identifier
from hearth.web.routes import BadRequest, error_response, get_state, json_body
from hearth.web.runtime import ServerState

router = APIRouter()

PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = "pending", "in_progress", "completed", "failed", "cancelled"
JOB_STATUSES = (PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED)
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})
SORT_KEYS = {"created_at": "create_time", "create_time": "create_time", "execution_duration": "execution_duration"}
MAX_IDS = 100  # ComfyUI's cap on the ids filter
# What the frontend previews: these output kinds, or files whose format or name says video, audio, 3D or text.
PREVIEWABLE_KINDS = frozenset({"images", "video", "audio", "3d", "text"})
THREE_D_SUFFIXES = (".obj", ".fbx", ".gltf", ".glb", ".usdz")
TEXT_SUFFIXES = (".txt", ".md", ".json")
TEXT_PREVIEW_CHARS = 1024
# extra_data keys that carry a user's credentials for API nodes: never sent back out.
SENSITIVE_EXTRA = frozenset({"api_key_comfy_org", "auth_token_comfy_org"})
ERROR_TEXT_FIELDS = ("node_id", "node_type", "exception_message", "exception_type")

Limit = Annotated[int | None, Query(ge=1, le=MAX_PAGE)]


def _pruned(job: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in job.items() if value is not None}


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _meta(extra_data: Any) -> tuple[Any, str | None]:
    """(create_time, workflow_id) from the client's extra_data, which may hold any shape."""
    if not isinstance(extra_data, dict):
        return None, None
    pnginfo = extra_data.get("extra_pnginfo")
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    workflow_id = workflow.get("id") if isinstance(workflow, dict) else None
    return _number(extra_data.get("create_time")), workflow_id if isinstance(workflow_id, str) else None


def _public_extra(extra_data: Any) -> Any:
    if not isinstance(extra_data, dict):
        return extra_data
    return {key: value for key, value in extra_data.items() if key not in SENSITIVE_EXTRA}


def _file_item(item: Any) -> dict[str, Any] | None:
    """An output list item as a file dict: dicts as they are, a 3D file's bare name as ComfyUI turns it."""
    if isinstance(item, dict):
        return item
    if isinstance(item, str) and item.lower().endswith(THREE_D_SUFFIXES):
        return {"filename": item, "type": "output", "subfolder": "", "mediaType": "3d"}
    return None


def _previewable(kind: str, item: dict[str, Any]) -> bool:
    fmt = item.get("format")
    name = item.get("filename")
    name = name.lower() if isinstance(name, str) else ""
    return (kind in PREVIEWABLE_KINDS or (isinstance(fmt, str) and fmt.startswith(("video/", "audio/")))
            or name.endswith(THREE_D_SUFFIXES) or name.endswith(TEXT_SUFFIXES))


def _is_text(kind: str, item: dict[str, Any]) -> bool:
    name = item.get("filename")
    return kind == "text" or (isinstance(name, str) and name.lower().endswith(TEXT_SUFFIXES))


def _output_lists(outputs: Any) -> list[tuple[str, str, list[Any]]]:
    """(node id, output kind, items) for every list in a history entry's outputs (``animated`` is a flag)."""
    if not isinstance(outputs, dict):
        return []
    return [(str(node_id), str(kind), items) for node_id, ui in outputs.items() if isinstance(ui, dict)
            for kind, items in ui.items() if kind != "animated" and isinstance(items, list)]


def _schema_item(item: dict[str, Any], node_id: str, kind: str) -> dict[str, Any]:
    """An output item as the frontend's schema takes it: its file fields strings (or left out), never null."""
    out = {key: value for key, value in item.items() if value is not None}
    for key in ("filename", "subfolder", "content", "display_name"):
        if key in out and not isinstance(out[key], str):
            out[key] = str(out[key])
    if out.get("type") not in ("input", "output", "temp"):
        out.pop("type", None)
    out["nodeId"] = node_id
    if not isinstance(out.get("mediaType"), str):
        out["mediaType"] = kind
    return out


def outputs_summary(outputs: Any) -> tuple[int, int, dict[str, Any] | None]:
    """(outputs_count, previewable_outputs_count, preview_output), as ComfyUI picks the preview: a saved (type
    output) image, video, audio or 3D file first, then any other such file, then a saved text file, then text."""
    count = previewable = 0
    best = fallback = text_file = text = None
    for node_id, kind, items in _output_lists(outputs):
        for raw in items:
            item = _file_item(raw)
            if item is None:
                if kind == "text" and raw is not None and text is None:
                    value = raw[0] if isinstance(raw, (list, tuple)) and raw else raw
                    value = str(value) if not isinstance(value, str) else value
                    text = {"content": value[:TEXT_PREVIEW_CHARS], "nodeId": node_id, "mediaType": kind}
                    if len(value) > TEXT_PREVIEW_CHARS:
                        text["truncated"] = True
                continue
            count += 1
            if not _previewable(kind, item):
                continue
            previewable += 1
            if best is not None:
                continue
            if _is_text(kind, item):
                text_file = text_file or _schema_item(item, node_id, kind)
            elif item.get("type") == "output":
                best = _schema_item(item, node_id, kind)
            elif fallback is None:
                fallback = _schema_item(item, node_id, kind)
    return count, previewable, best or fallback or text_file or text


def normalized_outputs(outputs: Any) -> Any:
    """A history entry's outputs for ``/jobs/{id}``: 3D file names become file dicts, ``None`` items go."""
    if not isinstance(outputs, dict):
        return {}
    result: dict[str, Any] = {}
    for node_id, ui in outputs.items():
        if not isinstance(ui, dict):
            result[node_id] = ui
            continue
        result[node_id] = {kind: ([_file_item(i) or i for i in items if i is not None]
                                  if kind != "animated" and isinstance(items, list) else items)
                           for kind, items in ui.items()}
    return result


def _error(data: Any) -> dict[str, Any] | None:
    """An ``execution_error`` message as the schema takes it (its text fields strings, ``traceback`` a list)."""
    if not isinstance(data, dict):
        return None
    error = dict(data)
    for key in ERROR_TEXT_FIELDS:
        error[key] = "" if error.get(key) is None else str(error[key])
    trace = error.get("traceback")
    error["traceback"] = [str(line) for line in trace] if isinstance(trace, list) else \
        ([] if trace is None else [str(trace)])
    return error


def queued_job(item: QueueItem, status: str) -> dict[str, Any]:
    create_time, workflow_id = _meta(item.extra_data)
    return _pruned({"id": item.prompt_id, "status": status, "priority": _number(item.number),
                    "create_time": create_time, "outputs_count": 0, "previewable_outputs_count": 0,
                    "workflow_id": workflow_id})


def finished_job(prompt_id: str, entry: dict[str, Any], started: float | None, finished: float,
                 include_outputs: bool = False) -> dict[str, Any]:
    number, _, prompt, extra_data, _ = (list(entry.get("prompt") or []) + [None] * 5)[:5]
    create_time, workflow_id = _meta(extra_data)
    status_info = entry.get("status") if isinstance(entry.get("status"), dict) else {}
    start_time = end_time = error = None
    interrupted = False
    for message in status_info.get("messages") or []:
        if not (isinstance(message, (list, tuple)) and len(message) >= 2 and isinstance(message[1], dict)):
            continue
        event, data = message[0], message[1]
        if event == "execution_start":
            start_time = _number(data.get("timestamp"))
        elif event in ("execution_success", "execution_error", "execution_interrupted"):
            end_time = _number(data.get("timestamp"))
            if event == "execution_error":
                error = _error(data)
            interrupted = interrupted or event == "execution_interrupted"
    if status_info.get("status_str") == "error":
        status = CANCELLED if interrupted else FAILED
    else:
        status = COMPLETED
    # Stored times stand in for messages that lack them (a prompt the server was killed during has none).
    if start_time is None and started:
        start_time = int(started * 1000)
    if end_time is None:
        end_time = int(finished * 1000)
    outputs = entry.get("outputs")
    count, previewable, preview = outputs_summary(outputs)
    job = _pruned({"id": prompt_id, "status": status, "priority": _number(number),
                   "create_time": create_time if create_time is not None else (start_time or end_time),
                   "execution_start_time": start_time, "execution_end_time": end_time, "execution_error": error,
                   "outputs_count": count, "previewable_outputs_count": previewable, "preview_output": preview,
                   "workflow_id": workflow_id})
    if include_outputs:
        job["outputs"] = normalized_outputs(outputs)
        job["execution_status"] = status_info
        job["workflow"] = {"prompt": prompt, "extra_data": _public_extra(extra_data)}
    return job


def finished_jobs(state: ServerState, ids: set[str] | None = None) -> list[dict[str, Any]]:
    """Every finished job (those named in ``ids``, when given), oldest first.

    A stored entry never changes (a rewrite is a new row), so its summary is made once and kept by row number:
    the frontend lists jobs after every prompt, and each entry holds the whole UI workflow the browser sent.
    """
    keys = [key for key in state.history.keys() if ids is None or key[1] in ids]
    cache: dict[int, dict[str, Any]] = state.job_summaries
    missing = [seq for seq, *_ in keys if seq not in cache]
    if missing:
        entries = state.history.entries(missing)
        for seq, prompt_id, started, finished in keys:
            if seq in entries:
                cache[seq] = finished_job(prompt_id, entries[seq], started, finished)
    if ids is None and len(cache) > len(keys):  # entries deleted or pushed out: forget their summaries
        live = {seq for seq, *_ in keys}
        for seq in [seq for seq in cache if seq not in live]:
            cache.pop(seq, None)
    return [cache[seq] for seq, *_ in keys if seq in cache]


def list_jobs(state: ServerState, statuses: set[str], ids: set[str] | None = None) -> list[dict[str, Any]]:
    jobs = []
    if IN_PROGRESS in statuses:
        jobs += [queued_job(item, IN_PROGRESS) for item in state.queue.running()]
    if PENDING in statuses:
        jobs += [queued_job(item, PENDING) for item in state.queue.pending()]
    if statuses & FINISHED:
        jobs += [job for job in finished_jobs(state, ids) if job["status"] in statuses]
    return jobs if ids is None else [job for job in jobs if job["id"] in ids]


def _sort_key(sort_by: str) -> Any:
    def key(job: dict[str, Any]) -> float:
        if sort_by == "execution_duration":
            start, end = job.get("execution_start_time"), job.get("execution_end_time")
            return end - start if start and end else 0
        return job.get("create_time") or 0

    return key


def _statuses(status: str | None) -> set[str]:
    if status is None or not status.strip(","):
        return set(JOB_STATUSES)
    wanted = {s.strip().lower() for s in status.split(",") if s.strip()}
    unknown = wanted - set(JOB_STATUSES)
    if unknown:
        raise BadRequest("invalid_request", f"Invalid status value(s): {', '.join(sorted(unknown))}",
                         f"Valid values: {', '.join(JOB_STATUSES)}.", field="status")
    return wanted


def _ids(ids: str | None) -> set[str] | None:
    if ids is None:
        return None
    wanted = list(dict.fromkeys(i.strip() for i in ids.split(",") if i.strip()))
    if len(wanted) > MAX_IDS:
        raise BadRequest("invalid_request", f"ids must contain at most {MAX_IDS} values", field="ids")
    return {identifier(i, "ids") for i in wanted}


@router.get("/jobs")
async def get_jobs(status: str | None = None, workflow_id: str | None = None, ids: str | None = None,
                   sort_by: str = "created_at", sort_order: str = "desc", limit: Limit = None,
                   offset: PageOffset = 0, state: ServerState = Depends(get_state)) -> dict[str, Any]:
    statuses = _statuses(status)
    sort_field = SORT_KEYS.get(sort_by.lower())
    if sort_field is None:
        raise BadRequest("invalid_request", "sort_by must be 'created_at' or 'execution_duration'", field="sort_by")
    if sort_order.lower() not in ("asc", "desc"):
        raise BadRequest("invalid_request", "sort_order must be 'asc' or 'desc'", field="sort_order")
    # Off the event loop: the first listing after a start reads every stored entry.
    jobs = await run_in_threadpool(list_jobs, state, statuses, _ids(ids))
    if workflow_id:
        jobs = [job for job in jobs if job.get("workflow_id") == workflow_id]
    jobs.sort(key=_sort_key(sort_field), reverse=sort_order.lower() == "desc")
    total = len(jobs)
    page = jobs[offset:] if limit is None else jobs[offset:offset + limit]
    return {"jobs": page, "pagination": {"offset": offset, "limit": limit, "total": total,
                                         "has_more": offset + len(page) < total}}


def find_job(state: ServerState, job_id: str) -> dict[str, Any] | None:
    """One job with its outputs and workflow when finished, as ``/jobs/{id}`` answers; ``None`` if unknown."""
    key = next((key for key in state.history.keys() if key[1] == job_id), None)
    entry = state.history.entries([key[0]]).get(key[0]) if key else None
    if key is not None and entry is not None:
        return finished_job(job_id, entry, key[2], key[3], include_outputs=True)
    for status, items in ((IN_PROGRESS, state.queue.running()), (PENDING, state.queue.pending())):
        for item in items:
            if item.prompt_id == job_id:
                return queued_job(item, status)
    return None


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, state: ServerState = Depends(get_state)) -> Any:
    job = await run_in_threadpool(find_job, state, job_id)
    if job is None:
        return error_response(404, "not_found", f"Job not found: {job_id}")
    return job


def _cancel(state: ServerState, job_id: str) -> str:
    """Stop one job whatever its state: ``running`` (interrupted), ``pending`` (taken off the queue),
    ``terminal`` (already finished: nothing to do) or ``unknown``."""
    if any(item.prompt_id == job_id for item in state.queue.pending()) and state.queue.delete([job_id]):
        state.broadcast_status()
        return "pending"
    if any(item.prompt_id == job_id for item in state.queue.running()):
        state.executor.interrupt()  # only the job that is running now: a stale cancel stops nothing else
        return "running"
    return "terminal" if state.history.get(job_id) else "unknown"


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, state: ServerState = Depends(get_state)) -> JSONResponse:
    result = _cancel(state, identifier(job_id, "job_id"))
    if result == "unknown":
        return error_response(404, "not_found", f"Job not found: {job_id}")
    return JSONResponse({"id": job_id, "result": result})


@router.post("/jobs/cancel")
async def cancel_jobs(request: Request, state: ServerState = Depends(get_state)) -> JSONResponse:
    body = await json_body(request)
    ids = body.get("job_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDS:
        raise BadRequest("invalid_request", f"Expected {{\"job_ids\": [id, ...]}} with 1 to {MAX_IDS} ids.",
                         field="job_ids")
    wanted = list(dict.fromkeys(identifier(i, "job_ids[]") for i in ids))
    results = {job_id: _cancel(state, job_id) for job_id in wanted}
    return JSONResponse({"cancelled": [j for j, r in results.items() if r in ("running", "pending")],
                         "results": results})
