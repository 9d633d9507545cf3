"""Web pages rendered on the server with Jinja2; forms post back, so everything works without JavaScript."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session, select

from hearth.registry_server.accounts.models import Publisher
from hearth.registry_server.accounts.services import actor_for, authenticate, get_publisher
from hearth.registry_server.admin import services as admin
from hearth.registry_server.deps import (
    ServerContext,
    check_admin,
    get_server,
    get_session,
    read_access,
    token_from_request,
)
from hearth.registry_server.errors import ApiError
from hearth.registry_server.mirror.services import resolve_pack
from hearth.registry_server.packs import services
from hearth.registry_server.packs.models import Finding, Pack, Version
from hearth.registry_server.web.review import build_review
from hearth.registry_server.web.security import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    check_csrf,
    csrf_token_for,
    new_login_csrf,
    safe_url,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
# Jinja2Templates autoescapes .html; links to URLs a publisher wrote go through safe_url (http/https only).
templates.env.filters["safe_url"] = safe_url
STYLESHEET = (HERE / "static" / "registry.css").read_bytes()
pages = APIRouter(include_in_schema=False, dependencies=[Depends(read_access)])
auth_pages = APIRouter(include_in_schema=False)


def _render(request: Request, server: ServerContext, name: str, status: int = 200, **context) -> HTMLResponse:
    secret = token_from_request(request, allow_cookie=True)
    context.setdefault("csrf", csrf_token_for(secret) if secret else "")
    return templates.TemplateResponse(request, name, {"base": server.base_url(request), "csrf_field": CSRF_FIELD,
                                                      **context}, status_code=status)


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
                   packs=[p for p in services.publisher_packs(session, publisher_id) if p.latest_version])


@auth_pages.get("/static/registry.css", include_in_schema=False)
def stylesheet() -> Response:
    return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@auth_pages.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/", server: ServerContext = Depends(get_server)) -> HTMLResponse:
    # Login CSRF: a random value in a strict same-site cookie that the form must echo back.
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = _render(request, server, "login.html", next=next, error="", csrf=csrf)
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@auth_pages.post("/login")
def login(request: Request, token: str = Form(""), next: str = Form("/"), csrf_token: str = Form(""),
          session: Session = Depends(get_session), server: ServerContext = Depends(get_server)) -> Response:
    check_csrf(request, csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE), server.base_url(request))
    try:
        authenticate(session, token.strip(), "read")
    except ApiError as exc:
        return _render(request, server, "login.html", status=401, next=next, error=exc.message, csrf=csrf_token)
    target = next if next.startswith("/") and not next.startswith("//") and "\\" not in next else "/"
    response = RedirectResponse(target, status_code=303)
    # Strict same-site cookie, and a CSRF token on every form besides: a form on another site can neither make
    # the browser send the cookie nor know the token.
    response.set_cookie("hearth_token", token.strip(), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@auth_pages.post("/logout")
def logout(request: Request, csrf_token: str = Form(""), server: ServerContext = Depends(get_server)) -> Response:
    """Forget the sign-in cookie (a form with its CSRF token too: another site must not sign a reviewer out)."""
    check_csrf(request, csrf_token, csrf_token_for(token_from_request(request, allow_cookie=True) or ""),
               server.base_url(request))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie("hearth_token")
    return response


def _admin_or_login(request: Request, session: Session):  # noqa: ANN202
    try:
        return check_admin(request, session, allow_cookie=True), None
    except ApiError as exc:
        return None, RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303) \
            if exc.status == 401 else exc


def _require_admin(request: Request, session: Session):  # noqa: ANN202
    """The admin's token, or the response to send instead (a redirect to sign in) – raises a 403 as ApiError."""
    token, refusal = _admin_or_login(request, session)
    if isinstance(refusal, ApiError):
        raise refusal
    return token, refusal


@auth_pages.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, message: str = "", session: Session = Depends(get_session),
               server: ServerContext = Depends(get_server)) -> Response:
    token, refusal = _require_admin(request, session)
    if refusal is not None:
        return refusal
    queue = []
    for v in admin.moderation_queue(session):
        fs = session.exec(select(Finding).where(Finding.version_id == v.id)).all()
        fs = sorted(fs, key=lambda f: (-admin.SEVERITY_RANK.get(str(f.severity).lower(), 0), f.id))
        pack = session.get(Pack, v.pack_id)
        queue.append({"pack": pack, "version": v, "findings": fs,
                      "publisher": session.get(Publisher, pack.publisher_id) if pack else None})
    return _render(request, server, "admin.html", queue=queue, audit=admin.audit_log(session, 30),
                   message=message)


@auth_pages.get("/admin/review/{pack_id}/{version}", response_class=HTMLResponse)
def review_page(pack_id: str, version: str, request: Request, session: Session = Depends(get_session),
                server: ServerContext = Depends(get_server)) -> Response:
    """One version for a reviewer: what changed since the pack's last approved version, findings at their lines."""
    token, refusal = _require_admin(request, session)
    if refusal is not None:
        return refusal
    pack = services.find_pack(session, pack_id)
    row = session.exec(select(Version).where(Version.pack_id == pack.id, Version.version == version)).first() \
        if pack else None
    if row is None:
        raise ApiError(404, "version_not_found", f"pack {pack_id!r} has no version {version!r}")
    review = build_review(session, server, pack, row)
    return _render(request, server, "review.html", review=review, pack=pack, version=row,
                   publisher=session.get(Publisher, pack.publisher_id))


ACTIONS = {"approve": admin.approve, "reject": admin.reject, "ban": admin.ban, "yank": admin.yank,
           "unban": admin.unban}


@auth_pages.post("/admin/action")
def admin_action(request: Request, target: str = Form(...), action: str = Form(...), reason: str = Form(""),
                 csrf_token: str = Form(""), session: Session = Depends(get_session),
                 server: ServerContext = Depends(get_server)) -> Response:
    token, refusal = _require_admin(request, session)
    if refusal is not None:
        return refusal
    check_csrf(request, csrf_token, csrf_token_for(token_from_request(request, allow_cookie=True) or ""),
               server.base_url(request))
    if action not in ACTIONS:
        raise ApiError(422, "unknown_action", f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    ACTIONS[action](session, target, actor_for(session, token), reason)
    server.cache.clear()  # the version's status changed what readers may see
    return RedirectResponse(f"/admin?message={quote(f'{action}: {target}')}", status_code=303)
