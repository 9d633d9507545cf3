"""Web pages rendered on the server with Jinja2; forms post back, so everything works without JavaScript."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session, select

from hearth.registry_server.accounts.services import actor_for, authenticate, get_publisher
from hearth.registry_server.admin import services as admin
from hearth.registry_server.deps import ServerContext, check_admin, get_server, get_session, read_access
from hearth.registry_server.errors import ApiError
from hearth.registry_server.mirror.services import resolve_pack
from hearth.registry_server.packs import services
from hearth.registry_server.packs.models import Finding, Pack

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
pages = APIRouter(include_in_schema=False, dependencies=[Depends(read_access)])
auth_pages = APIRouter(include_in_schema=False)


def _render(request: Request, server: ServerContext, name: str, status: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"base": server.base_url(request), **context},
                                      status_code=status)


@pages.get("/", response_class=HTMLResponse)
def search_page(request: Request, q: str = "", offset: int = 0, session: Session = Depends(get_session),
                server: ServerContext = Depends(get_server)) -> HTMLResponse:
    packs, total = services.search(session, q, 50, max(offset, 0))
    return _render(request, server, "search.html", q=q, packs=packs, total=total, offset=max(offset, 0))


@pages.get("/packs/{pack_id}", response_class=HTMLResponse)
def pack_page(pack_id: str, request: Request, session: Session = Depends(get_session),
              server: ServerContext = Depends(get_server)) -> HTMLResponse:
    pack = resolve_pack(session, server, pack_id)
    versions = services.versions_of(session, pack)
    findings: dict[str, list[Finding]] = {}
    if versions:
        for f in session.exec(select(Finding).where(Finding.version_id.in_([v.id for v in versions]))
                              .order_by(Finding.id)).all():
            findings.setdefault(f.version_id, []).append(f)
    latest = next((v for v in versions if v.version == pack.latest_version), None)
    nodes = services.node_classes(session, latest.id) if latest else []
    return _render(request, server, "pack.html", pack=pack, versions=versions, findings=findings, nodes=nodes)


@pages.get("/publishers/{publisher_id}", response_class=HTMLResponse)
def publisher_page(publisher_id: str, request: Request, session: Session = Depends(get_session),
                   server: ServerContext = Depends(get_server)) -> HTMLResponse:
    publisher = get_publisher(session, publisher_id)
    return _render(request, server, "publisher.html", publisher=publisher,
                   packs=services.publisher_packs(session, publisher_id))


@auth_pages.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/", server: ServerContext = Depends(get_server)) -> HTMLResponse:
    return _render(request, server, "login.html", next=next, error="")


@auth_pages.post("/login")
def login(request: Request, token: str = Form(""), next: str = Form("/"), session: Session = Depends(get_session),
          server: ServerContext = Depends(get_server)) -> Response:
    try:
        authenticate(session, token.strip(), "read")
    except ApiError as exc:
        return _render(request, server, "login.html", status=401, next=next, error=exc.message)
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    # Strict same-site cookie: a form on another site cannot make the browser send it (no CSRF on moderation).
    response.set_cookie("hearth_token", token.strip(), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


def _admin_or_login(request: Request, session: Session):  # noqa: ANN202
    try:
        return check_admin(request, session, allow_cookie=True), None
    except ApiError as exc:
        return None, RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303) \
            if exc.status == 401 else exc


@auth_pages.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, message: str = "", session: Session = Depends(get_session),
               server: ServerContext = Depends(get_server)) -> Response:
    token, refusal = _admin_or_login(request, session)
    if refusal is not None:
        if isinstance(refusal, ApiError):
            raise refusal
        return refusal
    queue = []
    for v in admin.moderation_queue(session):
        fs = session.exec(select(Finding).where(Finding.version_id == v.id).order_by(Finding.id)).all()
        queue.append({"pack": session.get(Pack, v.pack_id), "version": v, "findings": fs})
    return _render(request, server, "admin.html", queue=queue, audit=admin.audit_log(session, 30),
                   message=message)


@auth_pages.post("/admin/action")
def admin_action(request: Request, target: str = Form(...), action: str = Form(...), reason: str = Form(""),
                 session: Session = Depends(get_session)) -> Response:
    token, refusal = _admin_or_login(request, session)
    if refusal is not None:
        if isinstance(refusal, ApiError):
            raise refusal
        return refusal
    handlers = {"approve": admin.approve, "ban": admin.ban, "yank": admin.yank, "unban": admin.unban}
    if action not in handlers:
        raise ApiError(422, "unknown_action", f"unknown action {action!r}")
    handlers[action](session, target, actor_for(session, token), reason)
    return RedirectResponse(f"/admin?message={quote(f'{action}: {target}')}", status_code=303)
