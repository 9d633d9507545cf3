"""Pack queries: lookup, "latest", installable versions, ranked search and node-class lookup."""

from __future__ import annotations

from sqlalchemy import and_, func, or_
from sqlmodel import Session, select

from hearth.registry.manifest import normalize_name, semver_key
from hearth.registry_server.accounts.models import Publisher
from hearth.registry_server.db import utcnow
from hearth.registry_server.errors import ApiError
from hearth.registry_server.packs.models import ACTIVE, FLAGGED, VISIBLE_STATUSES, NodeClass, Pack, Version


def find_pack(session: Session, pack_id: str) -> Pack | None:
    return session.exec(select(Pack).where(Pack.key == normalize_name(pack_id))).first()


def get_pack(session: Session, pack_id: str, pack: Pack | None = None) -> Pack:
    """The pack, or a 404 naming it; pass an already loaded `pack` to skip the lookup."""
    pack = pack or find_pack(session, pack_id)
    if pack is None:
        raise ApiError(404, "pack_not_found", f"pack {pack_id!r} not found")
    if pack.banned:
        raise ApiError(404, "pack_banned", f"pack {pack_id!r} was removed by the registry admins")
    return pack


def pack_with_latest(session: Session, pack_id: str) -> tuple[Pack, Version | None, str]:
    """A visible pack, its latest version and its publisher's name in one query (the hottest reads)."""
    latest = and_(Version.pack_id == Pack.id, Version.version == Pack.latest_version)
    row = session.exec(select(Pack, Version, Publisher.name).outerjoin(Version, latest)
                       .join(Publisher, Publisher.id == Pack.publisher_id)
                       .where(Pack.key == normalize_name(pack_id))).first()
    if row is None:
        raise ApiError(404, "pack_not_found", f"pack {pack_id!r} not found")
    pack = get_pack(session, pack_id, row[0])  # the banned check and its message
    return pack, row[1], row[2]


def versions_of(session: Session, pack: Pack, statuses: tuple[str, ...] = VISIBLE_STATUSES) -> list[Version]:
    """A pack's versions, newest semver first."""
    rows = session.exec(select(Version).where(Version.pack_id == pack.id, Version.status.in_(statuses))).all()
    return sorted(rows, key=lambda v: semver_key(v.version), reverse=True)


def get_version(session: Session, pack: Pack, version: str,
                statuses: tuple[str, ...] = VISIBLE_STATUSES) -> Version:
    """One version; `statuses` widens what is found (a version's own status page also shows review/rejected)."""
    row = session.exec(select(Version).where(Version.pack_id == pack.id, Version.version == version)).first()
    if row is None or row.status not in statuses:
        raise ApiError(404, "version_not_found", f"pack {pack.id!r} has no version {version!r}")
    return row


def latest_of(versions: list[Version]) -> Version | None:
    """Highest active, non-yanked semver (input newest first, as versions_of returns it)."""
    return next((v for v in versions if v.status == ACTIVE and not v.yanked), None)


def install_version(session: Session, pack: Pack, version: str | None, allow_flagged: bool = False) -> Version:
    """The version an install gets; a refusal says why (pending, flagged, yanked-only) and what to do."""
    if version:
        row = get_version(session, pack, version)
        if row.status == FLAGGED and not allow_flagged:
            raise ApiError(409, "version_flagged",
                           f"{pack.id} {version} was flagged by verification; read its findings, and pass "
                           "allow_flagged=true to install it anyway")
        if row.status not in (ACTIVE, FLAGGED):
            raise ApiError(409, "version_pending", f"{pack.id} {version} is still being verified; try again shortly")
        return row  # an explicit pin may install a yanked version (PEP 592 semantics)
    # pack.latest_version is kept current by refresh_pack on every change: one indexed lookup, no sorting.
    latest = session.exec(select(Version).where(Version.pack_id == pack.id,
                                                Version.version == pack.latest_version)).first() \
        if pack.latest_version else None
    if latest is None or latest.status != ACTIVE or latest.yanked:
        raise ApiError(404, "no_installable_version",
                       f"pack {pack.id!r} has no active, non-yanked version; ask for one with ?version=")
    return latest


def node_classes(session: Session, version_id: str) -> list[NodeClass]:
    return list(session.exec(select(NodeClass).where(NodeClass.version_id == version_id)
                             .order_by(NodeClass.name)).all())


def refresh_pack(session: Session, pack: Pack) -> None:
    """Recompute the cached latest version and search text after any version change (caller commits)."""
    latest = latest_of(versions_of(session, pack, (ACTIVE,)))
    pack.latest_version = latest.version if latest else None
    classes = [n.name for n in node_classes(session, latest.id)] if latest else []
    publisher = session.get(Publisher, pack.publisher_id)
    # One field per line, in this order (_score relies on it); whitespace folded so no field spans lines.
    fields = [pack.id, pack.name or "", pack.description or "", pack.publisher_id,
              publisher.name if publisher else "", " ".join(classes)]
    pack.search_text = "\n".join(" ".join(f.lower().split()) for f in fields)
    pack.updated_at = utcnow()
    session.add(pack)


def _score(search_text: str, downloads: int, terms: list[str], query: str) -> float:
    """Rank: exact id > id prefix > name > node class > publisher > description; ties broken by downloads."""
    pid, name, description, publisher_id, publisher, classes_line = (search_text.split("\n") + [""] * 6)[:6]
    classes = classes_line.split()
    score = 0.0
    if pid == query or name == query:
        score += 100
    elif pid.startswith(query) or name.startswith(query):
        score += 40
    for t in terms:
        if t in pid or t in name:
            score += 20
        if t in classes:
            score += 25
        elif any(t in c for c in classes):
            score += 12
        if t == publisher_id or t in publisher:
            score += 8
        if t in description:
            score += 4
    return score + min(downloads, 10_000) / 10_000


# Ranking reads these columns only (search_text holds every lowercased field); full rows are loaded for the
# page that is returned.
_RANK_COLUMNS = (Pack.id, Pack.search_text, Pack.downloads)


def search(session: Session, query: str, limit: int = 20, offset: int = 0,
           require_latest: bool = True) -> tuple[list[Pack], int]:
    """Packs matching every term (in id, name, description, publisher or node classes), best first."""
    query = " ".join(query.lower().split())
    terms = query.split()[:8]
    conditions = [Pack.banned == False]  # noqa: E712 - SQL expression
    if require_latest:
        conditions.append(Pack.latest_version.is_not(None))
    for t in terms:
        escaped = t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Pack.search_text.like(f"%{escaped}%", escape="\\"))
    if not terms:
        stmt = select(Pack).where(*conditions)
        total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
        rows = session.exec(stmt.order_by(Pack.downloads.desc(), Pack.id).offset(offset).limit(limit)).all()
        return list(rows), total
    # Core rows, not ORM objects: ranking touches hundreds of rows to return twenty.
    candidates = session.connection().execute(select(*_RANK_COLUMNS).where(*conditions).limit(5000)).all()
    ranked = sorted(candidates, key=lambda r: (-_score(r.search_text, r.downloads, terms, query), r.id))
    page = [r.id for r in ranked[offset:offset + limit]]
    packs = {p.id: p for p in session.exec(select(Pack).where(Pack.id.in_(page))).all()} if page else {}
    return [packs[i] for i in page if i in packs], len(ranked)


def list_packs(session: Session, page: int, limit: int) -> tuple[list[Pack], int]:
    stmt = select(Pack).where(Pack.banned == False, Pack.latest_version.is_not(None))  # noqa: E712
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(Pack.id).offset((page - 1) * limit).limit(limit)).all()
    return list(rows), total


def pack_for_node_class(session: Session, class_name: str) -> tuple[Pack, Version] | None:
    """The pack whose latest active version provides `class_name` (most downloaded wins a tie)."""
    stmt = (select(Pack, Version).join(Version, Version.pack_id == Pack.id)
            .join(NodeClass, NodeClass.version_id == Version.id)
            .where(NodeClass.name == class_name, Version.version == Pack.latest_version, Pack.banned == False)  # noqa: E712
            .order_by(Pack.downloads.desc(), Pack.id))
    row = session.exec(stmt).first()
    return (row[0], row[1]) if row else None


def versions_by_pairs(session: Session, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[Pack, Version]]:
    """Bulk lookup of (pack id, version) pairs in one query."""
    if not pairs:
        return {}
    keys = {normalize_name(p) for p, _ in pairs}
    rows = session.exec(select(Pack, Version).join(Version, Version.pack_id == Pack.id)
                        .where(Pack.key.in_(keys), Version.status.in_(VISIBLE_STATUSES),
                               or_(*[Version.version == v for _, v in pairs]))).all()
    found = {(p.key, v.version): (p, v) for p, v in rows}
    return {(pid, ver): found[(normalize_name(pid), ver)] for pid, ver in pairs if (normalize_name(pid), ver) in found}


def publisher_packs(session: Session, publisher_id: str) -> list[Pack]:
    return list(session.exec(select(Pack).where(Pack.publisher_id == publisher_id, Pack.banned == False)  # noqa: E712
                             .order_by(Pack.id)).all())
