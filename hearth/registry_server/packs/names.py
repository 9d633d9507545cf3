"""Which names a new pack may take: a reserved name (a Python package index project, a base package, Hearth's own)
or the name of a Python requirement that other publishers' packs here already have, only with an admin's allowance.
The audit log records and holds the allowance (no table of its own: the newest "name.allow"/"name.disallow" entry
for a name decides)."""

from __future__ import annotations

from packaging.requirements import InvalidRequirement, Requirement
from sqlmodel import Session, select

from hearth.registry.manifest import normalize_name
from hearth.registry.names import reserved_rule
from hearth.registry_server.admin.models import AuditEntry
from hearth.registry_server.admin.services import audit
from hearth.registry_server.errors import ApiError
from hearth.registry_server.packs.models import Pack, Version

ALLOW, DISALLOW = "name.allow", "name.disallow"


def name_allowed(session: Session, name: str) -> bool:
    """True when an admin allowed this (normalised) name and has not taken the allowance back since."""
    last = session.exec(select(AuditEntry.action).where(AuditEntry.action.in_((ALLOW, DISALLOW)),
                                                        AuditEntry.target == normalize_name(name))
                        .order_by(AuditEntry.id.desc()).limit(1)).first()
    return last == ALLOW


def depended_on_by(session: Session, name: str, publisher_id: str | None = None) -> str | None:
    """Another publisher's pack here whose versions require the Python project `name` (no pack had that name): a
    pack taking the name now would replace that requirement in its installs. Returns "PACK VERSION", or None.

    The publisher's own packs do not count: an author may publish a pack its other packs already depend on.
    """
    key = normalize_name(name)
    rows = session.exec(select(Version.pack_id, Version.version, Version.dependencies, Version.manifest)
                        .join(Pack, Pack.id == Version.pack_id)
                        .where(Pack.publisher_id != (publisher_id or ""))).all()
    for pack_id, version, dependencies, manifest in rows:
        listed = (manifest or {}).get("requirements_txt") if isinstance(manifest, dict) else None
        for dep in [*(dependencies or ()), *(listed if isinstance(listed, list) else ())]:
            try:
                if normalize_name(Requirement(dep).name) == key:
                    return f"{pack_id} {version}"
            except InvalidRequirement:
                continue
    return None


def check_new_pack_name(session: Session, pack_id: str, publisher_id: str | None = None) -> None:
    """Refuse a new pack whose normalised name is reserved, or is a Python requirement of packs already here,
    unless an admin allowed the name (403, one line naming the rule)."""
    rule = reserved_rule(pack_id)
    if rule is None:
        user = depended_on_by(session, pack_id, publisher_id)
        if user is not None:
            rule = f"the Python requirements of packs on this registry (pack {user} requires it)"
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
    rule = reserved_rule(key) or ("a Python requirement of packs here" if depended_on_by(session, key) else None)
    if rule is None and not undo:
        raise ApiError(422, "name_not_reserved", f"{key!r} is not a reserved name; any publisher may take it")
    audit(session, actor, DISALLOW if undo else ALLOW, key, {"reason": reason, "rule": rule or ""})
    session.commit()
    return key
