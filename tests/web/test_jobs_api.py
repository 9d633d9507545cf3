"""The jobs API (/api/jobs, /api/jobs/{id}, cancel) on a real server, checked against the official frontend's schema.

The frontend (comfyui-frontend-package 1.58.1) parses ``/jobs`` with a zod schema, restated in :func:`check_job`:
one item that fails it empties the Job Queue and Media Assets panels ("[Jobs API] Error fetching jobs: ZodError").
Statuses, filters, sorting and paging are ComfyUI's (comfy_execution/jobs.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hearth_server import HearthServer, demo_prompt, queue, slow_prompt, wait_history, wait_running

JOB_STATUSES = {"pending", "in_progress", "completed", "failed", "cancelled"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_job(job: dict[str, Any]) -> None:
    """What the frontend's job schema requires of one item (absent and null differ, as in zod)."""
    assert isinstance(job["id"], str) and job["status"] in JOB_STATUSES, job
    assert _number(job["create_time"]), job
    for key in ("execution_start_time", "execution_end_time", "outputs_count", "previewable_outputs_count"):
        assert key not in job or job[key] is None or _number(job[key]), (key, job)
    assert "priority" not in job or _number(job["priority"]), job
    assert "workflow_id" not in job or job["workflow_id"] is None or isinstance(job["workflow_id"], str), job
    preview = job.get("preview_output")
    if preview is not None:
        assert isinstance(preview["nodeId"], str) and isinstance(preview["mediaType"], str), preview
        for key in ("filename", "subfolder", "content", "display_name"):
            assert key not in preview or isinstance(preview[key], str), (key, preview)
        assert "type" not in preview or preview["type"] in ("input", "output", "temp"), preview
    error = job.get("execution_error")
    if error is not None:
        for key in ("node_id", "node_type", "exception_message", "exception_type"):
            assert isinstance(error[key], str), (key, error)
        assert isinstance(error["traceback"], list) and all(isinstance(line, str) for line in error["traceback"])


def check_page(body: dict[str, Any]) -> list[dict[str, Any]]:
    page = body["pagination"]
    assert _number(page["offset"]) and _number(page["total"]) and isinstance(page["has_more"], bool), page
    for job in body["jobs"]:
        check_job(job)
    return body["jobs"]


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server of its own, so the history these tests count holds only their prompts."""
    root = tmp_path_factory.mktemp("jobs-api")
    server = HearthServer(root / "data", "--models-dir", str(root / "models")).start()
    try:
        with server.http() as client:
            yield client
    finally:
        server.stop()


def test_jobs_items_fit_the_frontends_schema_with_filters_sorting_and_paging(http: httpx.Client) -> None:
    done = []
    for n in range(3):
        prompt = demo_prompt()
        prompt["6"]["inputs"]["string_b"] = f"jobs{n}"
        done.append(queue(http, prompt, extra_data={"extra_pnginfo": {"workflow": {"id": f"wf-{n % 2}"}}}))
        time.sleep(0.01)  # distinct create_time
    failing = queue(http, {"1": {"class_type": "HearthTestFail", "inputs": {"message": "jobs-boom"}}})
    for prompt_id in (*done, failing):
        wait_history(http, prompt_id)

    # What the Job Queue panel asks for.
    jobs = check_page(http.get("/api/jobs?status=completed,failed,cancelled&limit=200&offset=0").json())
    mine = {job["id"]: job for job in jobs}
    for prompt_id in done:
        job = mine[prompt_id]
        assert job["status"] == "completed" and job["outputs_count"] == 1 and job["previewable_outputs_count"] == 1
        assert job["preview_output"]["nodeId"] == "7" and job["preview_output"]["mediaType"] == "images"
        assert job["preview_output"]["type"] == "output" and job["preview_output"]["filename"].endswith(".png")
        assert job["execution_start_time"] <= job["execution_end_time"]
    failed = mine[failing]
    assert failed["status"] == "failed" and "preview_output" not in failed
    assert failed["execution_error"]["node_type"] == "HearthTestFail"
    assert "jobs-boom" in failed["execution_error"]["exception_message"]

    # Filters, newest first by default, paging with has_more, and the other order.
    assert {j["id"] for j in check_page(http.get("/api/jobs?status=failed").json())} >= {failing}
    assert all(j["status"] == "failed" for j in http.get("/api/jobs?status=failed").json()["jobs"])
    wf1 = check_page(http.get("/api/jobs", params={"workflow_id": "wf-1"}).json())
    assert [j["id"] for j in wf1] == [done[1]]
    newest = check_page(http.get("/api/jobs?status=completed&limit=2").json())
    assert [j["id"] for j in newest] == [done[2], done[1]]
    body = http.get("/api/jobs?status=completed&limit=2&offset=2").json()
    assert [j["id"] for j in body["jobs"]] == [done[0]]
    assert body["pagination"] == {"offset": 2, "limit": 2, "total": 3, "has_more": False}
    assert http.get("/api/jobs?status=completed&limit=1").json()["pagination"]["has_more"] is True
    oldest = http.get("/api/jobs?status=completed&sort_by=created_at&sort_order=asc").json()["jobs"]
    assert [j["id"] for j in oldest] == done
    by_duration = http.get("/api/jobs?status=completed&sort_by=execution_duration").json()["jobs"]
    assert sorted(j["id"] for j in by_duration) == sorted(done)
    picked = http.get("/api/jobs", params={"ids": f"{done[0]},{failing}"}).json()["jobs"]
    assert {j["id"] for j in picked} == {done[0], failing}
    for bad in ("status=finished", "sort_by=name", "sort_order=up", "limit=0", "offset=-1",
                "ids=" + ",".join(f"id{i}" for i in range(101))):
        assert http.get(f"/api/jobs?{bad}").status_code == 400, bad

    # One job: its outputs and the prompt it ran, as the frontend reopens a workflow from the queue.
    detail = http.get(f"/api/jobs/{done[0]}").json()
    check_job(detail)
    assert detail["outputs"]["7"]["images"][0]["type"] == "output"
    assert detail["workflow"]["prompt"]["7"]["class_type"] == "SaveImage"
    assert detail["workflow"]["extra_data"]["extra_pnginfo"]["workflow"]["id"] == "wf-0"
    assert detail["execution_status"]["status_str"] == "success"
    assert http.get("/api/jobs/no-such-job").status_code == 404


def test_jobs_pending_running_and_cancel(http: httpx.Client) -> None:
    running = queue(http, slow_prompt("jobs-running", seconds=3.0, steps=30))
    wait_running(http, running)
    pending = queue(http, slow_prompt("jobs-pending", seconds=0, steps=1))
    jobs = {j["id"]: j for j in check_page(http.get("/api/jobs?status=in_progress,pending").json())}
    assert jobs[running]["status"] == "in_progress" and jobs[pending]["status"] == "pending"
    assert jobs[pending]["outputs_count"] == 0 and "preview_output" not in jobs[pending]
    assert http.get(f"/api/jobs/{pending}").json()["status"] == "pending"

    assert http.post(f"/api/jobs/{pending}/cancel").json()["result"] == "pending"
    assert all(item[1] != pending for item in http.get("/queue").json()["queue_pending"])
    answer = http.post("/api/jobs/cancel", json={"job_ids": [running]})
    assert answer.status_code == 200 and answer.json()["cancelled"] == [running]
    wait_history(http, running)
    job = check_page(http.get("/api/jobs", params={"ids": running}).json())[0]
    assert job["status"] == "cancelled"
    assert http.post(f"/api/jobs/{running}/cancel").json()["result"] == "terminal"
    assert http.post("/api/jobs/no-such-job/cancel").status_code == 404
    for bad in ({}, {"job_ids": []}, {"job_ids": "x"}, {"job_ids": [{"a": 1}]}):
        assert http.post("/api/jobs/cancel", json=bad).status_code == 400, bad


def test_deleted_history_leaves_the_job_list(http: httpx.Client) -> None:
    """Finished jobs' summaries are kept between calls: deleting or clearing history must still take them out."""
    first, second = (queue(http, slow_prompt(f"jobs-delete-{n}", seconds=0, steps=1)) for n in range(2))
    for prompt_id in (first, second):
        wait_history(http, prompt_id)
    listed = {j["id"] for j in http.get("/api/jobs?status=completed").json()["jobs"]}
    assert {first, second} <= listed
    assert http.post("/history", json={"delete": [first]}).status_code == 200
    listed = {j["id"] for j in http.get("/api/jobs?status=completed").json()["jobs"]}
    assert first not in listed and second in listed
    assert http.get(f"/api/jobs/{first}").status_code == 404
    assert http.post("/history", json={"clear": True}).status_code == 200
    assert http.get("/api/jobs?status=completed,failed,cancelled").json()["pagination"]["total"] == 0
