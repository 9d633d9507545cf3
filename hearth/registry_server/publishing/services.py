"""Publishing: reserve a version and hand out a single-use upload URL; accept the archive atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import stat
import tomllib
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

from packaging.requirements import Requirement
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from hearth.registry.manifest import (
    PACK_ID_RE,
    ManifestError,
    ManifestRuleError,
    check_archive_files,
    check_version_text,
    normalize_name,
    parse_manifest,
)
from hearth.registry_server.accounts.services import actor_for, authenticate, check_can_publish, get_publisher
from hearth.registry_server.admin.services import audit
from hearth.registry_server.db import utcnow
from hearth.registry_server.deps import ServerContext
from hearth.registry_server.errors import ApiError
from hearth.registry_server.packs.models import Pack, Version
from hearth.registry_server.packs.names import check_new_pack_name
from hearth.registry_server.publishing.models import UploadTicket
from hearth.registry_server.publishing.schemas import PublishRequest
from hearth.registry_server.simple.services import requirements_txt
from hearth.registry_server.storage.services import archive_key
from hearth.registry_server.verification.services import archive_problems


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def reserve_version(session: Session, server: ServerContext, publisher_id: str, pack_id: str, body: PublishRequest,
                    token_secret: str | None) -> tuple[str, UploadTicket]:
    """Check who may publish what, then reserve (pack, version). Returns the upload secret (once) and ticket."""
    token = authenticate(session, token_secret, "publish")
    publisher = get_publisher(session, publisher_id)
    check_can_publish(session, token, publisher_id)
    if publisher.banned:
        raise ApiError(403, "publisher_banned", f"publisher {publisher_id!r} is banned from publishing")
    if len(pack_id) > 100 or not PACK_ID_RE.match(pack_id):
        raise ApiError(422, "invalid_pack_id", f"pack id {pack_id!r} must be 1-100 letters, digits, '-', '_', '.', "
                                               "starting and ending with a letter or digit")
    if body.node.id and normalize_name(body.node.id) != normalize_name(pack_id):
        raise ApiError(422, "pack_id_mismatch", f"node.id {body.node.id!r} does not match the URL's {pack_id!r}")
    version = body.node_version.version
    try:
        check_version_text(version)
    except ValueError as exc:
        raise ApiError(422, "invalid_version", f"node_version.version: {exc}") from None
    if body.node_version.sha256 is not None and len(body.node_version.sha256) != 64:
        raise ApiError(422, "invalid_sha256", "node_version.sha256 must be 64 hex digits")
    key = normalize_name(pack_id)
    pack = session.exec(select(Pack).where(Pack.key == key)).first()
    if pack is None or pack.origin == "upstream":  # a new name here: not one a Python project is known by
        check_new_pack_name(session, pack_id, publisher_id)
    if pack is not None:
        # A pack only cached from the upstream (mirror mode) does not block a local publisher: local shadows it.
        if pack.publisher_id != publisher_id and pack.origin != "upstream":
            raise ApiError(409, "pack_id_taken", f"pack id {pack_id!r} belongs to publisher {pack.publisher_id!r}")
        if pack.banned:
            raise ApiError(403, "pack_banned", f"pack {pack.id!r} is banned")
        existing = session.exec(select(Version).where(Version.pack_id == pack.id, Version.version == version)).first()
        if existing is not None:
            raise ApiError(409, "version_exists", f"{pack.id} {version} was already published (status "
                                                  f"{existing.status}); versions are immutable, bump the version")
    now = utcnow()
    stale = session.exec(select(UploadTicket).where(UploadTicket.pack_key == key, UploadTicket.version == version)).first()
    if stale is not None:
        if stale.used_at is not None or stale.expires_at > now:
            raise ApiError(409, "version_in_progress", f"{pack_id} {version} is already being published")
        session.delete(stale)  # an abandoned reservation frees the version again
        session.flush()
    secret = secrets.token_urlsafe(32)
    ticket = UploadTicket(
        secret_hash=_hash(secret), version_id=str(uuid.uuid4()), pack_id=pack_id, pack_key=key, version=version,
        publisher_id=publisher_id, token_id=token.id, expected_sha256=(body.node_version.sha256 or "").lower(),
        request=body.model_dump(exclude={"personal_access_token"}),
        expires_at=now + timedelta(seconds=server.settings.upload_url_ttl_s))
    session.add(ticket)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "version_in_progress", f"{pack_id} {version} is already being published") from None
    audit(session, actor_for(session, token), "version.reserve", f"{pack_id}@{version}", {"publisher": publisher_id})
    session.commit()
    return secret, ticket


def review_note(server: ServerContext, version: Version) -> str:
    """What the publisher is told after an upload: why (and that) the version will wait for a reviewer, or ""."""
    from hearth.registry_server.accounts.models import Publisher
    from hearth.registry_server.verification.services import review_reason

    with Session(server.engine) as session:
        pack = session.get(Pack, version.pack_id)
        why = review_reason(server.settings, session.get(Publisher, pack.publisher_id) if pack else None)
    return f"after verification this version waits for review by the registry's admins ({why})" if why else ""


def open_ticket(session: Session, secret: str) -> UploadTicket:
    ticket = session.exec(select(UploadTicket).where(UploadTicket.secret_hash == _hash(secret))).first()
    if ticket is None:
        raise ApiError(404, "upload_url_unknown", "this upload URL is not known; publish again to get one")
    if ticket.used_at is not None:
        raise ApiError(409, "upload_url_used", "this upload URL was already used; upload URLs are single-use")
    if ticket.expires_at <= utcnow():
        raise ApiError(410, "upload_url_expired", f"this upload URL expired at {ticket.expires_at:%H:%M:%S}Z; "
                                                  "publish again to get a new one")
    return ticket


def _license_text(raw: str | None) -> str:
    if not raw:
        return ""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, dict):
        return str(value.get("text") or value.get("file") or "")
    return str(value)


def read_archive_manifest(path: Path) -> dict:
    """The manifest inside an uploaded archive, as a dict; errors name the archive's pyproject.toml."""
    with zipfile.ZipFile(path) as zf:
        try:
            raw = zf.read("pyproject.toml")
        except KeyError:
            raise ApiError(422, "manifest_missing", "the archive has no pyproject.toml at its root") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
            manifest = parse_manifest(data, "pyproject.toml (in the archive)").to_dict()
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
            check_archive_files(names, lambda n: zf.read(n) if n in names else None, "archive")
            if "requirements.txt" in names:  # a ComfyUI pack's requirements: which Python names it needs (packs.names)
                text = zf.read("requirements.txt").decode("utf-8", "replace")
                manifest["requirements_txt"] = requirements_txt(text)[:500]
            return manifest
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(422, "manifest_invalid", f"pyproject.toml (in the archive): not valid TOML: {exc}") \
                from None
        except ManifestRuleError as exc:  # well formed, not allowed: the same rules `comfy node validate` applies
            raise ApiError(400, "manifest_refused", str(exc), file=exc.path, field=exc.field) from None
        except ManifestError as exc:
            raise ApiError(422, "manifest_invalid", str(exc), file=exc.path, field=exc.field) from None


def accept_upload(server: ServerContext, secret: str, tmp: Path, sha256: str, size: int,
                  declared_sha256: str | None) -> Version:
    """Store an uploaded archive and create its version, or refuse with a 4xx and change nothing visible.

    Order matters for crash safety: the blob is stored (atomically) before the version row commits, so a
    version never exists without its file; a blob left behind by a crash is collected at the next start.
    """
    settings = server.settings
    with Session(server.engine, expire_on_commit=False) as session:
        ticket = open_ticket(session, secret)
        declared = (declared_sha256 or ticket.expected_sha256 or "").lower()
        if declared and declared != sha256:
            raise ApiError(422, "sha256_mismatch", f"the archive's sha256 is {sha256}, but {declared} was declared")
        problems = archive_problems(tmp, settings)
        if problems:
            raise ApiError(422, "archive_rejected", "; ".join(f"{p.path or 'archive'}: {p.message}" for p in problems),
                           findings=[p.to_dict() for p in problems])
        manifest = read_archive_manifest(tmp)
        for field, expected in (("name", ticket.pack_id), ("version", ticket.version),
                                ("publisher", ticket.publisher_id)):
            got = manifest[field]
            same = normalize_name(got) == normalize_name(expected) if field == "name" else got == expected
            if not same:
                where = "tool.comfy.PublisherId" if field == "publisher" else f"project.{field}"
                raise ApiError(422, "manifest_mismatch", f"pyproject.toml (in the archive): {where} is {got!r}, "
                                                         f"but this upload URL is for {expected!r}")
        key = archive_key(sha256)
        stored_here = not server.storage.exists(key)
        if stored_here:
            server.storage.put_file(key, tmp)
        try:
            return _record_version(server, session, ticket, manifest, key, sha256, size)
        except ApiError as exc:
            if exc.status == 409 and exc.code != "upload_url_used":
                # This upload lost: free the version for a fresh publish now, not when the URL expires,
                # and take back the archive nobody will refer to.
                _abandon(server, ticket.id, key if stored_here else None)
            raise


def _abandon(server: ServerContext, ticket_id: int, blob_key: str | None) -> None:
    """Forget an unused reservation and, when no version refers to it, the blob its upload stored."""
    with Session(server.engine) as session:
        session.execute(delete(UploadTicket).where(UploadTicket.id == ticket_id, UploadTicket.used_at.is_(None)))
        session.commit()
        referenced = blob_key and session.exec(select(Version.id).where(Version.blob_key == blob_key)).first()
    if blob_key and not referenced:
        server.storage.delete(blob_key)


def _insert_pack_if_new(session: Session, ticket: UploadTicket) -> None:
    """Create the pack row unless it exists, without failing when another upload creates it at the same time.

    The database settles the race: a concurrent insert of the same id or key waits for the other transaction
    and then does nothing, so both first versions of a new pack land under the one pack row.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported databases reach here
        raise RuntimeError(f"unsupported database {dialect!r}")
    row = Pack(id=ticket.pack_id, key=ticket.pack_key, publisher_id=ticket.publisher_id).model_dump()
    session.execute(insert(Pack).values(**row).on_conflict_do_nothing())


def _record_version(server: ServerContext, session: Session, ticket: UploadTicket, manifest: dict, key: str,
                    sha256: str, size: int) -> Version:
    """Mark the ticket used and commit the pack and its new version in one transaction."""
    now = utcnow()
    claimed = session.execute(update(UploadTicket).where(UploadTicket.id == ticket.id,
                                                         UploadTicket.used_at.is_(None))
                              .values(used_at=now)).rowcount
    if claimed != 1:
        session.rollback()
        raise ApiError(409, "upload_url_used", "this upload URL was already used; upload URLs are single-use")
    request = ticket.request or {}
    node, node_version = request.get("node") or {}, request.get("node_version") or {}
    pack = session.exec(select(Pack).where(Pack.key == ticket.pack_key)).first()
    if pack is None:
        _insert_pack_if_new(session, ticket)
        pack = session.exec(select(Pack).where(Pack.key == ticket.pack_key)).one()
        if pack.publisher_id != ticket.publisher_id:
            session.rollback()
            raise ApiError(409, "pack_id_taken", f"pack id {ticket.pack_id!r} was just taken by "
                                                 f"{pack.publisher_id!r}")
    elif pack.origin == "upstream":
        # The first local version takes the name over: from now on the upstream is never asked about it.
        pack.origin, pack.publisher_id = "local", ticket.publisher_id
        audit(session, f"publisher:{ticket.publisher_id}", "pack.shadow_upstream", pack.id)
    elif pack.publisher_id != ticket.publisher_id:
        session.rollback()
        raise ApiError(409, "pack_id_taken", f"pack id {ticket.pack_id!r} belongs to {pack.publisher_id!r}")
    pack.name = manifest.get("display_name") or node.get("name") or pack.name or ticket.pack_id
    pack.description = manifest.get("description") or node.get("description") or ""
    pack.license = manifest.get("license") or _license_text(node.get("license"))
    pack.repository = manifest.get("repository") or node.get("repository") or ""
    pack.icon = manifest.get("icon") or node.get("icon") or ""
    pack.banner_url = manifest.get("banner") or node.get("banner_url") or ""
    pack.updated_at = now
    session.add(pack)
    session.flush()  # tables have no ORM relationships, so the pack must be written before its version
    deps = manifest.get("dependencies") or []
    dep_keys = {normalize_name(Requirement(d).name): d for d in deps} if deps else {}
    known = set(session.exec(select(Pack.key).where(Pack.key.in_(dep_keys))).all()) if dep_keys else set()
    pack_deps = [d for k, d in dep_keys.items() if k in known and k != ticket.pack_key]
    version = Version(
        id=ticket.version_id, pack_id=pack.id, version=ticket.version, status="pending", sha256=sha256,
        size=size, blob_key=key, uploaded_at=now, changelog=node_version.get("changelog") or "",
        dependencies=deps, pack_dependencies=pack_deps, requires_python=manifest.get("requires_python"),
        requires_comfyui=manifest.get("requires_comfyui") or "",
        supported_os=manifest.get("supported_os") or node_version.get("supported_os") or [],
        supported_accelerators=(manifest.get("supported_accelerators")
                                or node_version.get("supported_accelerators") or []),
        supported_comfyui_version=node_version.get("supported_comfyui_version") or "",
        supported_comfyui_frontend_version=node_version.get("supported_comfyui_frontend_version") or "",
        manifest=manifest)
    session.add(version)
    audit(session, f"publisher:{ticket.publisher_id}", "version.upload", f"{pack.id}@{ticket.version}",
          {"sha256": sha256, "size": size})
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "version_exists", f"{ticket.pack_id} {ticket.version} already exists") from None
    server.wake_verifier.set()
    return version


def recover(server: ServerContext) -> dict[str, int]:
    """Clean up after a crash: temporary files of dead processes, blobs no version refers to (older than the
    grace period, so another live process's blob about to be committed is safe), verification claims of dead
    processes, and long-expired tickets."""
    from hearth.registry.pids import pid_alive
    from hearth.registry_server.verification.services import release_dead_claims

    removed = {"temp": 0, "blobs": 0, "tickets": 0, "claims": 0}
    tmp_dir = server.settings.tmp_dir
    if tmp_dir.is_dir():
        for entry in tmp_dir.iterdir():
            parts = entry.name.split("-")
            if len(parts) > 1 and parts[1].isdigit() and not pid_alive(int(parts[1])):
                _remove_left_behind(entry)
                removed["temp"] += 1
    removed["blobs"] = collect_garbage(server, server.settings.gc_grace_s)
    cutoff = utcnow() - timedelta(days=1)
    with Session(server.engine) as session:
        removed["claims"] = release_dead_claims(session)
        removed["tickets"] = session.execute(
            delete(UploadTicket).where(UploadTicket.used_at.is_(None), UploadTicket.expires_at < cutoff)).rowcount
        session.commit()
    return removed


def _remove_left_behind(entry: Path) -> None:
    """Remove a dead process's temporary file or folder, including the sandbox's read-only copy of a pack."""
    if not entry.is_dir() or entry.is_symlink():
        entry.unlink(missing_ok=True)
        return
    for folder, _, _ in os.walk(entry):
        with contextlib.suppress(OSError):
            os.chmod(folder, stat.S_IRWXU)
    shutil.rmtree(entry, ignore_errors=True)


def collect_garbage(server: ServerContext, grace_s: float) -> int:
    """Delete stored blobs that no version refers to and that are older than `grace_s` seconds."""
    with Session(server.engine) as session:
        referenced = set()
        for blob, wheel in session.exec(select(Version.blob_key, Version.wheel_key)).all():
            referenced.add(blob)
            if wheel:
                referenced.update((wheel, wheel + ".metadata"))
    cutoff = utcnow() - timedelta(seconds=grace_s)
    removed = 0
    for prefix in ("archives/", "wheels/"):
        for blob in list(server.storage.list(prefix)):
            if blob.key not in referenced and blob.modified <= cutoff:
                server.storage.delete(blob.key)
                removed += 1
    return removed
