"""Admin API: the moderation queue, moderation actions and the audit log (admin tokens only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session

from hearth.registry_server.accounts.models import Token
from hearth.registry_server.accounts.services import actor_for
from hearth.registry_server.admin import services
from hearth.registry_server.admin.schemas import AuditOut, ModerationAction, SuppressionIn
from hearth.registry_server.deps import ServerContext, admin_access, get_server, get_session
from hearth.registry_server.errors import ApiError
from hearth.registry_server.packs.models import Pack

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
ACTIONS = {"approve": services.approve, "reject": services.reject, "reverify": services.reverify, "ban": services.ban, "unban": services.unban, "yank": services.yank,
           "delete": lambda s, t, a, r="": services.delete_version(s, t, a)}


@router.get("/queue")
def queue(request: Request, session: Session = Depends(get_session), token: Token = Depends(admin_access),
          server: ServerContext = Depends(get_server)) -> list[dict]:
    """Versions waiting for review, flagged or pending: the most severe findings first."""
    from hearth.registry_server.packs.routes import version_out

    out = []
    for v in services.moderation_queue(session):
        pack = session.get(Pack, v.pack_id)
        out.append({"pack": pack.id, **version_out(session, v, pack, server.base_url(request)).model_dump()})
    return out


@router.post("/suppress")
def suppress(body: SuppressionIn, session: Session = Depends(get_session), token: Token = Depends(admin_access)) -> dict:
    """Rule a finding a false positive for the pack's later versions."""
    row = services.suppress(session, body.pack, body.rule, actor_for(session, token), body.reason, body.path,
                            body.line)
    return {"ok": True, "id": row.id, "pack": row.pack_id, "rule": row.rule, "path": row.path, "line": row.line}


@router.post("/{action}")
def moderate(action: str, body: ModerationAction, session: Session = Depends(get_session),
             token: Token = Depends(admin_access), server: ServerContext = Depends(get_server)) -> dict:
    if action == "unyank":
        services.yank(session, body.target, actor_for(session, token), body.reason, undo=True)
    elif action in ACTIONS:
        ACTIONS[action](session, body.target, actor_for(session, token), body.reason)
        if action == "reverify":
            server.wake_verifier.set()
    else:
        raise ApiError(404, "unknown_action", f"unknown action {action!r}; use one of "
                                              f"{', '.join([*ACTIONS, 'unyank'])}")
    return {"ok": True, "action": action, "target": body.target}


@router.get("/audit", response_model=list[AuditOut])
def audit(limit: int = 100, action: str | None = None, target: str | None = None,
          session: Session = Depends(get_session), token: Token = Depends(admin_access)) -> list[AuditOut]:
    return [AuditOut(id=e.id, at=e.at.isoformat(), actor=e.actor, action=e.action, target=e.target, detail=e.detail)
            for e in services.audit_log(session, limit, action, target)]
