"""/simple/: PEP 503 HTML and PEP 691 JSON by content negotiation, with hashes, yanking and requires-python."""

from __future__ import annotations

import html

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session, select

from hearth.registry.manifest import normalize_name, semver_key, semver_to_pep440
from hearth.registry_server.deps import ServerContext, get_server, get_session, read_access
from hearth.registry_server.mirror.services import resolve_pack
from hearth.registry_server.packs.models import ACTIVE, Pack, Version

router = APIRouter(tags=["simple index"], dependencies=[Depends(read_access)])
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"


def _wants_json(request: Request) -> bool:
    """PEP 691 negotiation: honour q-values; JSON only when the client ranks it above HTML."""
    best, best_q = None, -1.0
    for part in request.headers.get("accept", "").split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media in (JSON_TYPE, HTML_TYPE, "text/html", "*/*") and q > best_q:
            best, best_q = media, q
    return best == JSON_TYPE


def _respond(request: Request, data: dict, html_body: str) -> Response:
    headers = {"Vary": "Accept"}
    if _wants_json(request):
        return JSONResponse(data, media_type=JSON_TYPE, headers=headers)
    return HTMLResponse(html_body, headers=headers)


@router.get("/simple/")
def simple_root(request: Request, session: Session = Depends(get_session)) -> Response:
    keys = session.exec(select(Pack.key).where(Pack.banned == False, Pack.latest_version.is_not(None))  # noqa: E712
                        .order_by(Pack.key)).all()
    data = {"meta": {"api-version": "1.1"}, "projects": [{"name": k} for k in keys]}
    body = "".join(f'<a href="{html.escape(k)}/">{html.escape(k)}</a>\n' for k in keys)
    return _respond(request, data, f"<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" "
                                   f"content=\"1.1\"><title>Simple index</title></head><body>\n{body}</body></html>")


@router.get("/simple/{project}/")
def simple_project(project: str, request: Request, session: Session = Depends(get_session),
                   server: ServerContext = Depends(get_server)) -> Response:
    key = normalize_name(project)
    if key != project:
        return RedirectResponse(f"{server.base_url(request)}/simple/{key}/", status_code=301)
    pack = resolve_pack(session, server, project)
    # Flagged, pending, banned and deleted versions are absent: an index hands out only installable files.
    rows = session.exec(select(Version).where(Version.pack_id == pack.id, Version.status == ACTIVE,
                                              Version.wheel_sha256 != "")).all()
    rows = sorted(rows, key=lambda v: semver_key(v.version))
    base = server.base_url(request)
    files, anchors = [], []
    for v in rows:
        url = f"{base}/files/{v.wheel_sha256}/{v.wheel_filename}"
        entry = {"filename": v.wheel_filename, "url": url, "hashes": {"sha256": v.wheel_sha256},
                 "size": v.wheel_size, "upload-time": v.uploaded_at.isoformat().replace("+00:00", "Z"),
                 "yanked": (v.yanked_reason or True) if v.yanked else False}
        attrs = f' href="{html.escape(url)}#sha256={v.wheel_sha256}"'
        if v.requires_python:
            entry["requires-python"] = v.requires_python
            attrs += f' data-requires-python="{html.escape(v.requires_python)}"'
        if v.wheel_metadata_sha256:
            entry["core-metadata"] = {"sha256": v.wheel_metadata_sha256}
            entry["dist-info-metadata"] = {"sha256": v.wheel_metadata_sha256}
            attrs += (f' data-core-metadata="sha256={v.wheel_metadata_sha256}"'
                      f' data-dist-info-metadata="sha256={v.wheel_metadata_sha256}"')
        if v.yanked:
            attrs += f' data-yanked="{html.escape(v.yanked_reason)}"'
        files.append(entry)
        anchors.append(f"<a{attrs}>{html.escape(v.wheel_filename)}</a><br>")
    data = {"meta": {"api-version": "1.1"}, "name": pack.key, "files": files,
            "versions": [semver_to_pep440(v.version) for v in rows]}
    body = "\n".join(anchors)
    return _respond(request, data, f"<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" "
                                   f"content=\"1.1\"><title>Links for {html.escape(pack.key)}</title></head>"
                                   f"<body>\n<h1>Links for {html.escape(pack.key)}</h1>\n{body}\n</body></html>")
