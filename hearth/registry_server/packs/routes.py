"""Read APIs over packs: ComfyUI's registry routes (for comfy-cli) and Hearth's own /api/v1 JSON API."""

from __future__ import annotations

import math

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session, and_, or_, select

from hearth.registry_server.accounts.models import Publisher
from hearth.registry_server.admin.services import suppressions_for
from hearth.registry_server.deps import ServerContext, get_server, get_session, read_access
from hearth.registry_server.errors import ApiError
from hearth.registry_server.mirror.services import resolve_pack
from hearth.registry_server.packs import services
from hearth.registry_server.packs.models import STATUS_PAGE_STATUSES, Finding, NodeClass, Pack, Version
from hearth.registry_server.packs.schemas import (
    PackDetail,
    PackSummary,
    SearchResult,
    VersionOut,
    comfy_node,
    comfy_version,
)

# ComfyUI routes return JSONResponse directly: their shapes are ComfyUI's, and skipping FastAPI's response
# validation saves a thread hop and an encoding pass on the hottest routes.
comfy = APIRouter(tags=["ComfyUI registry API"], dependencies=[Depends(read_access)])
api = APIRouter(prefix="/api/v1", tags=["Hearth API"], dependencies=[Depends(read_access)])


def _latest_versions(session: Session, packs: list[Pack]) -> dict[str, Version]:
    pairs = [(p.id, p.latest_version) for p in packs if p.latest_version]
    if not pairs:
        return {}
    # Exactly the (pack, version) pairs: loading every version of every pack on the page costs 5x the rows.
    rows = session.exec(select(Version).where(or_(*[and_(Version.pack_id == p, Version.version == v)
                                                    for p, v in pairs]))).all()
    return {v.pack_id: v for v in rows}


def _node_page(session: Session, request: Request, server: ServerContext, packs: list[Pack], total: int,
               page: int, limit: int) -> JSONResponse:
    base = server.base_url(request)
    latest = _latest_versions(session, packs)
    return {"nodes": [comfy_node(p, latest.get(p.id), base) for p in packs], "total": total, "page": page,
            "limit": limit, "totalPages": math.ceil(total / limit) if limit else 0}


@comfy.get("/nodes")
def list_nodes(request: Request, page: int = Query(1, ge=1), limit: int = Query(10, ge=1, le=1000),
               session: Session = Depends(get_session), server: ServerContext = Depends(get_server)) -> JSONResponse:
    packs, total = services.list_packs(session, page, limit)
    return JSONResponse(_node_page(session, request, server, packs, total, page, limit))


@comfy.get("/nodes/search")
def search_nodes(request: Request, search: str = "", page: int = Query(1, ge=1),
                 limit: int = Query(10, ge=1, le=1000), session: Session = Depends(get_session),
                 server: ServerContext = Depends(get_server)) -> JSONResponse:
    packs, total = services.search(session, search, limit, (page - 1) * limit)
    return JSONResponse(_node_page(session, request, server, packs, total, page, limit))


@comfy.get("/nodes/{pack_id}")
def get_node(pack_id: str, request: Request, session: Session = Depends(get_session),
             server: ServerContext = Depends(get_server)) -> JSONResponse:
    if server.settings.upstream:
        resolve_pack(session, server, pack_id)  # mirror mode: fetch or refresh from the upstream first
    pack, latest, publisher_name = services.pack_with_latest(session, pack_id)
    return JSONResponse(comfy_node(pack, latest, server.base_url(request), publisher_name))


@comfy.get("/nodes/{pack_id}/versions")
def node_versions(pack_id: str, request: Request, session: Session = Depends(get_session),
                  server: ServerContext = Depends(get_server)) -> JSONResponse:
    pack = resolve_pack(session, server, pack_id)
    base = server.base_url(request)
    return JSONResponse([comfy_version(v, pack, base) for v in services.versions_of(session, pack)])


@comfy.get("/nodes/{pack_id}/versions/{version}")
def node_version(pack_id: str, version: str, request: Request, session: Session = Depends(get_session),
                 server: ServerContext = Depends(get_server)) -> JSONResponse:
    pack = resolve_pack(session, server, pack_id, version)
    return JSONResponse(comfy_version(services.get_version(session, pack, version), pack, server.base_url(request)))


@comfy.get("/nodes/{pack_id}/install")
def install_node(pack_id: str, request: Request, version: str | None = None, allow_flagged: bool = False,
                 session: Session = Depends(get_session), server: ServerContext = Depends(get_server)) -> JSONResponse:
    if version is None and not server.settings.upstream:
        pack, row, _ = services.pack_with_latest(session, pack_id)
        if row is None or row.status != "active" or row.yanked:
            row = services.install_version(session, pack, None)  # raises the explanatory 404
    else:
        pack = resolve_pack(session, server, pack_id, version)
        row = services.install_version(session, pack, version, allow_flagged)
    server.count_download(pack.id)
    return JSONResponse(comfy_version(row, pack, server.base_url(request)))


@comfy.get("/comfy-nodes/{class_name}/node")
def node_for_class(class_name: str, request: Request, session: Session = Depends(get_session),
                   server: ServerContext = Depends(get_server)) -> JSONResponse:
    found = services.pack_for_node_class(session, class_name)
    if found is None:
        raise ApiError(404, "node_class_not_found", f"no active pack provides node class {class_name!r}")
    pack, version = found
    return JSONResponse(comfy_node(pack, version, server.base_url(request)))


@comfy.post("/bulk/nodes/versions")
def bulk_versions(request: Request, body: dict = Body(...), session: Session = Depends(get_session),
                  server: ServerContext = Depends(get_server)) -> JSONResponse:
    items = body.get("node_versions")
    if not isinstance(items, list) or len(items) > 1000:
        raise ApiError(422, "invalid_request", "node_versions must be a list of {node_id, version} (at most 1000)")
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("node_id"), str) \
                or not isinstance(item.get("version"), str):
            raise ApiError(422, "invalid_request", f"node_versions[{i}] must be {{node_id, version}} strings")
        pairs.append((item["node_id"], item["version"]))
    found = services.versions_by_pairs(session, pairs)
    base = server.base_url(request)
    out = []
    for pid, ver in pairs:
        hit = found.get((pid, ver))
        entry = {"identifier": {"node_id": pid, "version": ver}, "status": "success" if hit else "not_found"}
        if hit:
            entry["node_version"] = comfy_version(hit[1], hit[0], base)
        else:
            entry["error_message"] = f"pack {pid!r} has no version {ver!r}"
        out.append(entry)
    return JSONResponse({"node_versions": out})


# --- Hearth's own API -------------------------------------------------------------------------------------------

@api.get("/search", response_model=SearchResult)
def api_search(request: Request, q: str = "", limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0),
               session: Session = Depends(get_session), server: ServerContext = Depends(get_server)) -> SearchResult:
    """Ranked search over pack ids, names, descriptions, node class names and publishers."""
    packs, total = services.search(session, q, limit, offset)
    base = server.base_url(request)
    return SearchResult(query=q, total=total, results=[PackSummary.of(p, base) for p in packs])


def version_out(session: Session, version: Version, pack: Pack, base: str) -> VersionOut:
    findings = session.exec(select(Finding).where(Finding.version_id == version.id).order_by(Finding.id)).all()
    return VersionOut.of(version, pack, base, list(findings), services.node_classes(session, version.id))


@api.get("/packs/{pack_id}", response_model=PackDetail)
def api_pack(pack_id: str, request: Request, session: Session = Depends(get_session),
             server: ServerContext = Depends(get_server)) -> PackDetail:
    """A pack with every visible version, its verification findings and node classes."""
    pack = resolve_pack(session, server, pack_id)
    base = server.base_url(request)
    versions = [version_out(session, v, pack, base) for v in services.versions_of(session, pack)]
    return PackDetail(
        id=pack.id, name=pack.name or pack.id, description=pack.description, publisher=pack.publisher_id,
        license=pack.license, repository=pack.repository, icon=pack.icon, downloads=pack.downloads,
        latest_version=pack.latest_version, versions=versions,
        publisher_trust=getattr(session.get(Publisher, pack.publisher_id), "trust", ""),
        suppressions=[{"rule": x.rule, "path": x.path, "line": x.line, "by": x.by, "reason": x.reason,
                       "at": x.created_at.isoformat()} for x in suppressions_for(session, pack.id)],
        install={"comfy": f"comfy node registry-install {pack.id}",
                 "uv": f"uv pip install --index-url {base}/simple/ {pack.key}"})


@api.get("/packs/{pack_id}/versions/{version}", response_model=VersionOut)
def api_version(pack_id: str, version: str, request: Request, session: Session = Depends(get_session),
                server: ServerContext = Depends(get_server)) -> VersionOut:
    pack = resolve_pack(session, server, pack_id, version)
    # The publisher's status page: a version waiting for review (or rejected) is shown here, and only here.
    row = services.get_version(session, pack, version, STATUS_PAGE_STATUSES)
    return version_out(session, row, pack, server.base_url(request))


@api.get("/node-classes/{class_name}")
def api_node_class(class_name: str, request: Request, session: Session = Depends(get_session),
                   server: ServerContext = Depends(get_server)) -> dict:
    """Every pack whose latest active version provides this node class."""
    rows = session.exec(select(Pack, NodeClass).join(Version, Version.pack_id == Pack.id)
                        .join(NodeClass, NodeClass.version_id == Version.id)
                        .where(NodeClass.name == class_name, Version.version == Pack.latest_version,
                               Pack.banned == False)).all()  # noqa: E712
    base = server.base_url(request)
    return {"node_class": class_name,
            "packs": [{**PackSummary.of(p, base).model_dump(), "category": n.category} for p, n in rows]}
