"""Finished work: /history (ComfyUI's shape) and /jobs (one list of pending, running and finished prompts)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from hearth.core.executor.queue import QueueItem
from hearth.web.boundary import HistoryOffset, PageOffset, PageSize
from hearth.web.routes import BadRequest, clear_or_delete, error_response, get_state
from hearth.web.runtime import ServerState

router = APIRouter()

JOB_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")


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


def _workflow_id(extra_data: dict[str, Any]) -> str | None:
    # extra_data is the client's: any shape may arrive, and /jobs must list it anyway.
    pnginfo = extra_data.get("extra_pnginfo") if isinstance(extra_data, dict) else None
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    return workflow.get("id") if isinstance(workflow, dict) else None


def _queued_job(item: QueueItem, status: str, started: float | None) -> dict[str, Any]:
    return {"id": item.prompt_id, "status": status, "priority": item.number,
            "create_time": item.extra_data.get("create_time"),
            "execution_start_time": int(started * 1000) if started else None, "execution_end_time": None,
            "outputs_count": 0, "preview_output": None, "workflow_id": _workflow_id(item.extra_data),
            "execution_error": None}


def _finished_job(prompt_id: str, entry: dict[str, Any], started: float | None, finished: float) -> dict[str, Any]:
    number, _, _, extra_data, _ = (entry["prompt"] + [None] * 5)[:5]
    messages = entry["status"]["messages"]
    events = {event for event, _ in messages}
    if entry["status"]["status_str"] == "success":
        status = "completed"
    elif "execution_interrupted" in events:
        status = "cancelled"
    else:
        status = "failed"
    files = [item for ui in entry["outputs"].values() for key in ("images", "gifs", "videos", "audio")
             for item in (ui.get(key) or []) if isinstance(item, dict)]
    error = next((data for event, data in messages if event == "execution_error"), None)
    return {"id": prompt_id, "status": status, "priority": number,
            "create_time": (extra_data or {}).get("create_time"),
            "execution_start_time": int(started * 1000) if started else None,
            "execution_end_time": int(finished * 1000), "outputs_count": len(files),
            "preview_output": files[0] if files else None, "workflow_id": _workflow_id(extra_data or {}),
            "execution_error": error}


def all_jobs(state: ServerState, finished: bool = True) -> list[dict[str, Any]]:
    """Every job; ``finished=False`` skips reading history (the queue panel polls for pending and running)."""
    running = [_queued_job(i, "in_progress", state.queue.started.get(i.prompt_id)) for i in state.queue.running()]
    pending = [_queued_job(i, "pending", None) for i in state.queue.pending()]
    if not finished:
        return running + pending
    done = [_finished_job(pid, entry, started, end) for pid, _, started, end, entry in state.history.records()]
    return running + pending + done


@router.get("/jobs")
async def get_jobs(status: str | None = None, limit: PageSize = None, offset: PageOffset = 0,
                   sort_by: str = "create_time", sort_order: str = "desc",
                   state: ServerState = Depends(get_state)) -> dict[str, Any]:
    wanted = {s.strip() for s in (status or "").split(",") if s.strip()} or set(JOB_STATUSES)
    unknown = wanted - set(JOB_STATUSES)
    if unknown:
        raise BadRequest("invalid_request", f"Unknown job status {', '.join(sorted(unknown))}",
                         f"Use any of {', '.join(JOB_STATUSES)}.")
    jobs = [job for job in all_jobs(state, finished=bool(wanted - {"pending", "in_progress"}))
            if job["status"] in wanted]
    if sort_by not in ("create_time", "execution_duration"):
        raise BadRequest("invalid_request", f"Unknown sort_by {sort_by!r}", "Use create_time or execution_duration.")

    def key(job: dict[str, Any]) -> float:
        if sort_by == "execution_duration":
            start, end = job["execution_start_time"], job["execution_end_time"]
            return (end - start) if start and end else -1
        created = job["create_time"]
        return created if isinstance(created, (int, float)) and not isinstance(created, bool) else 0

    jobs.sort(key=key, reverse=sort_order.lower() != "asc")
    total = len(jobs)
    page = jobs[offset:] if limit is None else jobs[offset:offset + limit]
    return {"jobs": page, "pagination": {"offset": offset, "limit": limit, "total": total,
                                         "has_more": offset + len(page) < total}}


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, state: ServerState = Depends(get_state)) -> Any:
    for job in all_jobs(state):
        if job["id"] == job_id:
            entry = state.history.get(job_id).get(job_id)
            if entry is not None:
                job = {**job, "outputs": entry["outputs"], "prompt": entry["prompt"][2]}
            return job
    return error_response(404, "not_found", f"No job {job_id}")
