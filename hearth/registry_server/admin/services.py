"""Moderation and the audit log: approve, reject, ban, unban, yank, delete; every action is recorded."""

from __future__ import annotations

from sqlmodel import Session, select

from hearth.registry_server.admin.models import AuditEntry, Suppression
from hearth.registry_server.errors import ApiError
from hearth.registry_server.processes import bump_on_commit


def audit(session: Session, actor: str, action: str, target: str = "", detail: dict | None = None) -> None:
    """Record an action in the caller's transaction, so the log and the change commit together."""
    session.add(AuditEntry(actor=actor, action=action, target=target, detail=detail or {}))
    bump_on_commit(session)  # other processes' caches watch the counter this commit moves


def audit_log(session: Session, limit: int = 100, action: str | None = None, target: str | None = None
              ) -> list[AuditEntry]:
    stmt = select(AuditEntry)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if target:
        stmt = stmt.where(AuditEntry.target.like(f"%{target}%"))
    return list(session.exec(stmt.order_by(AuditEntry.id.desc()).limit(limit)).all())


def split_target(target: str) -> tuple[str, str | None]:
    """"pack" or "pack@1.2.3" → (pack, version or None)."""
    pack, _, version = target.partition("@")
    if not pack:
        raise ApiError(422, "invalid_target", f"{target!r} is not PACK or PACK@VERSION")
    return pack, version or None


def _locate(session: Session, target: str):  # noqa: ANN202
    from hearth.registry_server.packs.models import Pack, Version
    from hearth.registry_server.packs.services import find_pack

    pack_id, version = split_target(target)
    pack: Pack | None = find_pack(session, pack_id)
    if pack is None:
        raise ApiError(404, "pack_not_found", f"pack {pack_id!r} not found")
    row = None
    if version:
        row = session.exec(select(Version).where(Version.pack_id == pack.id, Version.version == version)).first()
        if row is None:
            raise ApiError(404, "version_not_found", f"pack {pack.id!r} has no version {version!r}")
    return pack, row


def _finish(session: Session, pack, actor: str, action: str, target: str, detail: dict) -> None:  # noqa: ANN001
    from hearth.registry_server.packs.services import refresh_pack

    refresh_pack(session, pack)
    audit(session, actor, action, target, detail)
    session.commit()


def approve(session: Session, target: str, actor: str, reason: str = "") -> None:
    pack, version = _locate(session, target)
    if version is None:
        raise ApiError(422, "version_required", "approve takes PACK@VERSION")
    if version.status not in ("review", "flagged", "pending"):
        raise ApiError(409, "not_approvable", f"{target} is {version.status}; only versions waiting for review, "
                                              "flagged or pending can be approved")
    version.status, version.status_reason = "active", reason or "approved by an admin"
    session.add(version)
    _finish(session, pack, actor, "version.approve", target, {"reason": reason})


def reject(session: Session, target: str, actor: str, reason: str = "") -> None:
    """Turn down a version waiting for review: never installable, and its version string stays used."""
    pack, version = _locate(session, target)
    if version is None:
        raise ApiError(422, "version_required", "reject takes PACK@VERSION")
    if version.status not in ("review", "flagged", "pending"):
        raise ApiError(409, "not_rejectable", f"{target} is {version.status}; only versions waiting for review, "
                                              "flagged or pending can be rejected (ban an active one)")
    version.status, version.status_reason = "rejected", reason or "rejected by a reviewer"
    session.add(version)
    _finish(session, pack, actor, "version.reject", target, {"reason": reason})


def reverify(session: Session, target: str, actor: str, reason: str = "") -> None:
    """Queue a flagged version for verification again (after a suppression or a verifier update)."""
    pack, version = _locate(session, target)
    if version is None:
        raise ApiError(422, "version_required", "reverify takes PACK@VERSION")
    if version.status != "flagged":
        raise ApiError(409, "not_flagged", f"{target} is {version.status}; only flagged versions are re-verified "
                                           "(an active one would stop being installable meanwhile)")
    version.status, version.status_reason = "pending", "queued for re-verification"
    version.verify_claimed_at, version.verify_claimed_by = None, ""
    session.add(version)
    _finish(session, pack, actor, "version.reverify", target, {"reason": reason})


def ban(session: Session, target: str, actor: str, reason: str = "") -> None:
    pack, version = _locate(session, target)
    if version is None:
        pack.banned = True
    else:
        version.status, version.status_reason = "banned", reason or "banned by an admin"
        session.add(version)
    _finish(session, pack, actor, "ban", target, {"reason": reason})


def unban(session: Session, target: str, actor: str, reason: str = "") -> None:
    pack, version = _locate(session, target)
    if version is None:
        pack.banned = False
    else:
        if version.status != "banned":
            raise ApiError(409, "not_banned", f"{target} is {version.status}, not banned")
        # An admin lifting a ban vouches for the version, so it becomes installable again.
        version.status, version.status_reason = "active", reason or "unbanned by an admin"
        session.add(version)
    _finish(session, pack, actor, "unban", target, {"reason": reason})


def yank(session: Session, target: str, actor: str, reason: str = "", undo: bool = False) -> None:
    pack, version = _locate(session, target)
    if version is None:
        raise ApiError(422, "version_required", "yank takes PACK@VERSION")
    version.yanked, version.yanked_reason = (not undo), ("" if undo else reason or "yanked")
    session.add(version)
    _finish(session, pack, actor, "version.unyank" if undo else "version.yank", target, {"reason": reason})


def delete_version(session: Session, target: str, actor: str) -> None:
    """Hide a version for good; its row stays so the version string is never reused."""
    pack, version = _locate(session, target)
    if version is None:
        raise ApiError(422, "version_required", "delete takes PACK@VERSION")
    version.status = "deleted"
    session.add(version)
    _finish(session, pack, actor, "version.delete", target, {})


# Both vocabularies in use (the sandbox's high/medium/low, the built-in checks' error/warning/info).
SEVERITY_RANK = {"critical": 5, "high": 4, "error": 4, "medium": 3, "warning": 3, "low": 2, "info": 1}


def worst_severity(findings: list) -> int:
    return max((SEVERITY_RANK.get(str(f.severity).lower(), 0) for f in findings), default=0)


def moderation_queue(session: Session, limit: int = 200) -> list:
    """Versions waiting for a reviewer (and flagged or still pending ones): the most severe findings first, then
    the most findings, then the oldest upload, so the riskiest code is looked at first."""
    from hearth.registry_server.packs.models import Finding, Version

    rows = list(session.exec(select(Version).where(Version.status.in_(("review", "flagged", "pending")))
                             .order_by(Version.uploaded_at).limit(limit)).all())
    findings: dict[str, list] = {}
    if rows:
        for f in session.exec(select(Finding).where(Finding.version_id.in_([v.id for v in rows]))).all():
            findings.setdefault(f.version_id, []).append(f)
    return sorted(rows, key=lambda v: (-worst_severity(findings.get(v.id, [])), -len(findings.get(v.id, [])),
                                       v.uploaded_at))


def suppress(session: Session, pack_target: str, rule: str, actor: str, reason: str, path: str = "*",
             line: int | None = None) -> Suppression:
    """Rule a finding a false positive for a pack's later versions (archive findings can never be suppressed)."""
    pack, _ = _locate(session, pack_target.partition("@")[0])
    if not rule:
        raise ApiError(422, "invalid_rule", "name the finding's rule, e.g. process.spawn")
    if rule.startswith("archive."):
        raise ApiError(422, "not_suppressible", f"{rule}: archive findings cannot be suppressed; the archive is "
                                                "unsafe to unpack")
    if not reason.strip():
        raise ApiError(422, "reason_required", "a suppression needs a reason (it is shown to reviewers later)")
    row = Suppression(pack_id=pack.id, rule=rule, path=path or "*", line=line or None, by=actor, reason=reason)
    session.add(row)
    audit(session, actor, "finding.suppress", pack.id, {"rule": rule, "path": row.path, "line": row.line,
                                                         "reason": reason})
    session.commit()
    return row


def suppressions_for(session: Session, pack_id: str) -> list[Suppression]:
    return list(session.exec(select(Suppression).where(Suppression.pack_id == pack_id)
                             .order_by(Suppression.id)).all())
