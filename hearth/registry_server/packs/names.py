"""Which names a new pack may take: a reserved name (a Python package index project, a base package, Hearth's own)
only with an admin's allowance, which the audit log records and holds (no table of its own: the append-only log is
the record, the newest "name.allow"/"name.disallow" entry for a name decides)."""

from __future__ import annotations

from sqlmodel import Session, select

from hearth.registry.manifest import normalize_name
from hearth.registry.names import reserved_rule
from hearth.registry_server.admin.models import AuditEntry
from hearth.registry_server.admin.services import audit
from hearth.registry_server.errors import ApiError

ALLOW, DISALLOW = "name.allow", "name.disallow"


def name_allowed(session: Session, name: str) -> bool:
    """True when an admin allowed this (normalised) name and has not taken the allowance back since."""
    last = session.exec(select(AuditEntry.action).where(AuditEntry.action.in_((ALLOW, DISALLOW)),
                                                        AuditEntry.target == normalize_name(name))
                        .order_by(AuditEntry.id.desc()).limit(1)).first()
    return last == ALLOW


def check_new_pack_name(session: Session, pack_id: str) -> None:
    """Refuse a new pack whose normalised name is reserved and not allowed by an admin (403, one line)."""
    rule = reserved_rule(pack_id)
    if rule is None or name_allowed(session, pack_id):
        return
    key = normalize_name(pack_id)
    raise ApiError(403, "name_reserved", f"pack id {pack_id!r} is reserved ({key!r} is one of {rule}): a pack of "
                                         "that name could replace the Python project in other packs' installs; "
                                         "choose another name, or ask the registry's admins to allow it "
                                         f"(comfy registry admin allow-name {key})", rule=rule)


def allow_name(session: Session, name: str, actor: str, reason: str, *, undo: bool = False) -> str:
    """Allow (or, with `undo`, stop allowing) new packs of a reserved name; audited. Returns the normalised name."""
    key = normalize_name(name)
    rule = reserved_rule(key)
    if rule is None and not undo:
        raise ApiError(422, "name_not_reserved", f"{key!r} is not a reserved name; any publisher may take it")
    audit(session, actor, DISALLOW if undo else ALLOW, key, {"reason": reason, "rule": rule or ""})
    session.commit()
    return key
