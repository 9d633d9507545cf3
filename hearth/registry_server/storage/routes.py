"""Downloads by content hash: pack archives (`downloadUrl`) and wheels (simple index), plus PEP 658 metadata."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlmodel import Session, or_, select

from hearth.registry_server.deps import ServerContext, get_server, get_session, read_access
from hearth.registry_server.errors import ApiError
from hearth.registry_server.packs.models import VISIBLE_STATUSES, Pack, Version

router = APIRouter(tags=["downloads"], dependencies=[Depends(read_access)])
IMMUTABLE = "public, max-age=31536000, immutable"


def _send(server: ServerContext, key: str, filename: str, media_type: str) -> Response:
    local = getattr(server.storage, "local_path", None)
    headers = {"Cache-Control": IMMUTABLE}
    if local is not None:
        return FileResponse(local(key), media_type=media_type, filename=filename, headers=headers)
    return StreamingResponse(server.storage.open(key), media_type=media_type,
                             headers={**headers, "Content-Disposition": f'attachment; filename="{filename}"'})


def _lookup(session: Session, sha256: str) -> tuple[Version, Pack]:
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ApiError(422, "invalid_sha256", f"{sha256!r} is not a sha256 hex digest")
    row = session.exec(select(Version, Pack).join(Pack, Pack.id == Version.pack_id)
                       .where(or_(Version.sha256 == sha256, Version.wheel_sha256 == sha256),
                              Version.status.in_(VISIBLE_STATUSES), Pack.banned == False)).first()  # noqa: E712
    if row is None:
        raise ApiError(404, "file_not_found", f"no downloadable file has sha256 {sha256}")
    return row[0], row[1]


@router.get("/api/v1/files/{sha256}")
def download_by_hash(sha256: str, session: Session = Depends(get_session),
                     server: ServerContext = Depends(get_server)) -> Response:
    """Download an archive or wheel by its sha256."""
    version, pack = _lookup(session, sha256)
    if version.sha256 == sha256:
        return _send(server, version.blob_key, f"{pack.id}-{version.version}.zip", "application/zip")
    return _send(server, version.wheel_key, version.wheel_filename, "application/octet-stream")


@router.get("/files/{sha256}/{filename}")
def download_file(sha256: str, filename: str, session: Session = Depends(get_session),
                  server: ServerContext = Depends(get_server)) -> Response:
    if filename.endswith(".whl.metadata"):
        version, _ = _lookup(session, sha256)
        if version.wheel_sha256 != sha256:
            raise ApiError(404, "file_not_found", f"{filename} not found")
        body = b"".join(server.storage.open(version.wheel_key + ".metadata"))
        return Response(body, media_type="text/plain", headers={"Cache-Control": IMMUTABLE})
    return download_by_hash(sha256, session, server)
