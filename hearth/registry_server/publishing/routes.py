"""Publishing routes: ComfyUI's POST .../versions (reserve + signed URL) and the PUT to that URL."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.requests import ClientDisconnect

from hearth.registry_server.deps import ServerContext, get_server, get_session, token_from_request
from hearth.registry_server.errors import ApiError
from hearth.registry_server.packs.models import Version
from hearth.registry_server.publishing import services
from hearth.registry_server.publishing.schemas import PublishRequest

router = APIRouter(tags=["publishing"])


@router.post("/publishers/{publisher_id}/nodes/{pack_id}/versions", status_code=201)
def publish_version(publisher_id: str, pack_id: str, body: PublishRequest, request: Request,
                    session: Session = Depends(get_session), server: ServerContext = Depends(get_server)):
    """Reserve a version and return a single-use upload URL (comfy-cli then PUTs the zip there)."""
    secret, ticket = services.reserve_version(session, server, publisher_id, pack_id, body,
                                              body.personal_access_token or token_from_request(request))
    node_version = {
        "id": ticket.version_id, "version": ticket.version, "changelog": body.node_version.changelog or "",
        "dependencies": body.node_version.dependencies, "deprecated": False, "status": "pending",
        "createdAt": ticket.created_at.isoformat().replace("+00:00", "Z"),
    }
    signed = f"{server.base_url(request)}/uploads/{secret}"
    return JSONResponse({"node_version": node_version, "signedUrl": signed,
                         "upload_expires_at": ticket.expires_at.isoformat().replace("+00:00", "Z")}, 201)


def _declared_sha(request: Request) -> str | None:
    return request.headers.get("x-hearth-sha256") or request.headers.get("x-amz-meta-sha256")


@router.put("/uploads/{secret}")
async def upload_archive(secret: str, request: Request, server: ServerContext = Depends(get_server)):
    """Receive the zip: streamed to a private temporary file with size limit and hash, then accepted atomically."""
    limit = server.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "upload_too_large", f"archive of {declared} bytes exceeds the limit of {limit} bytes")
    # Check the ticket before storing a possibly large body; a refusal still reads the body first.
    try:
        await run_in_threadpool(_check_ticket, server, secret)
    except ApiError:
        await _drain(request, limit)
        raise
    tmp_dir = server.settings.tmp_dir
    tmp_dir.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets the next start remove files of a process that died mid-upload.
    fd, name = tempfile.mkstemp(prefix=f"upload-{os.getpid()}-", suffix=".zip", dir=tmp_dir)
    tmp = Path(name)
    try:
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "upload_too_large", f"archive exceeds the limit of {limit} bytes")
                h.update(chunk)
                out.write(chunk)
        if size == 0:
            raise ApiError(422, "empty_upload", "the upload was empty; PUT the zip archive as the request body")
        version: Version = await run_in_threadpool(services.accept_upload, server, secret, tmp, h.hexdigest(),
                                                   size, _declared_sha(request))
    finally:
        tmp.unlink(missing_ok=True)
    review = await run_in_threadpool(services.review_note, server, version)
    return {"id": version.id, "version": version.version, "status": version.status, "sha256": version.sha256,
            "size": version.size, "review": review}


async def _drain(request: Request, limit: int) -> None:
    """Read and drop the body, up to ``limit`` bytes, before a refusal is sent.

    A client still sending its archive when the answer comes may see only a reset connection (ECONNRESET), not the
    message: whether the server keeps reading after it answers is up to the HTTP layer, so this route reads first.
    """
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                return
    except ClientDisconnect:
        return


def _check_ticket(server: ServerContext, secret: str) -> None:
    with Session(server.engine) as session:
        services.open_ticket(session, secret)
