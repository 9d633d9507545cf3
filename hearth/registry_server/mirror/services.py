"""Pull-through cache: fetch a pack version from the upstream registry on first use, verify and keep it, and
serve the cached copy when the upstream is down. Local packs always shadow upstream packs of the same name."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from hearth.registry.manifest import PACK_ID_RE, is_semver, normalize_name
from hearth.registry_server.accounts.models import Publisher
from hearth.registry_server.db import utcnow
from hearth.registry_server.errors import ApiError
from hearth.registry_server.packs import services
from hearth.registry_server.packs.models import Pack, Version

log = logging.getLogger("hearth.registry.mirror")
MIRROR_PUBLISHER = "mirror"
# Ask the upstream about one (pack, version) at most this often; in between, the cache answers.
REFRESH_S = 60.0
_last_checked: dict[tuple[str, str | None], float] = {}
_lock = threading.Lock()


class UpstreamUnavailable(Exception):
    pass


def resolve_pack(session: Session, server, pack_id: str, version: str | None = None) -> Pack:  # noqa: ANN001
    """The pack for a read: local first; in mirror mode, fetched from (or refreshed against) the upstream."""
    pack = services.find_pack(session, pack_id)
    upstream = server.settings.upstream
    if not upstream or (pack is not None and pack.origin == "local"):
        return services.get_pack(session, pack_id, pack)
    if PACK_ID_RE.match(pack_id):
        key = (normalize_name(pack_id), version)
        with _lock:
            due = time.monotonic() - _last_checked.get(key, -REFRESH_S) >= REFRESH_S
            if due:
                _last_checked[key] = time.monotonic()
        if due or pack is None:
            try:
                _pull(session, server, upstream.rstrip("/"), pack_id, version)
            except UpstreamUnavailable as exc:
                log.warning("upstream %s unavailable (%s); serving the cache", upstream, exc)
                if pack is None:
                    raise ApiError(502, "upstream_unavailable", f"pack {pack_id!r} is not cached and the upstream "
                                                                f"registry is unavailable: {exc}") from None
    return services.get_pack(session, pack_id)


def _get(client: httpx.Client, url: str) -> httpx.Response | None:
    try:
        r = client.get(url)
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(str(exc)) from exc
    if r.status_code == 404:
        return None
    if r.status_code >= 500:
        raise UpstreamUnavailable(f"{url}: HTTP {r.status_code}")
    if r.status_code != 200:
        return None
    return r


def _pull(session: Session, server, upstream: str, pack_id: str, version: str | None) -> None:  # noqa: ANN001
    settings = server.settings
    with httpx.Client(timeout=settings.upstream_timeout_s, follow_redirects=True) as client:
        q = f"?version={version}" if version else ""
        r = _get(client, f"{upstream}/nodes/{pack_id}/install{q}")
        if r is None:
            return
        nv = r.json()
        ver = nv.get("version", "")
        if not is_semver(ver):
            return
        pack = services.find_pack(session, pack_id)
        if pack is not None and session.exec(select(Version).where(Version.pack_id == pack.id,
                                                                   Version.version == ver)).first():
            return
        meta = _get(client, f"{upstream}/nodes/{pack_id}")
        node = meta.json() if meta is not None else {}
        settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"upload-{os.getpid()}-mirror-", suffix=".zip", dir=settings.tmp_dir)
        tmp = Path(name)
        try:
            h, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                try:
                    with client.stream("GET", nv["downloadUrl"]) as resp:
                        if resp.status_code != 200:
                            raise UpstreamUnavailable(f"archive download: HTTP {resp.status_code}")
                        for chunk in resp.iter_bytes():
                            size += len(chunk)
                            if size > settings.max_upload_bytes:
                                raise ApiError(502, "upstream_archive_too_large", f"{pack_id} {ver} is too large")
                            h.update(chunk)
                            out.write(chunk)
                except httpx.HTTPError as exc:
                    raise UpstreamUnavailable(str(exc)) from exc
            sha = h.hexdigest()
            if nv.get("sha256") and nv["sha256"] != sha:
                raise ApiError(502, "upstream_hash_mismatch", f"{pack_id} {ver}: upstream archive hash mismatch")
            _store(session, server, node, nv, pack_id, ver, tmp, sha, size)
        finally:
            tmp.unlink(missing_ok=True)


def _store(session: Session, server, node: dict, nv: dict, pack_id: str, ver: str, tmp: Path, sha: str,  # noqa: ANN001
           size: int) -> None:
    from hearth.registry_server.storage.services import archive_key
    from hearth.registry_server.verification.services import archive_problems, claimant, verify_version

    if archive_problems(tmp, server.settings):
        raise ApiError(502, "upstream_archive_rejected", f"{pack_id} {ver}: the upstream archive failed our checks")
    key = archive_key(sha)
    if not server.storage.exists(key):
        server.storage.put_file(key, tmp)
    if session.get(Publisher, MIRROR_PUBLISHER) is None:
        session.add(Publisher(id=MIRROR_PUBLISHER, name="Upstream mirror"))
        session.flush()  # no ORM relationships: write parents before children
    pack = services.find_pack(session, pack_id)
    if pack is None:
        pack = Pack(id=node.get("id") or pack_id, key=normalize_name(pack_id), publisher_id=MIRROR_PUBLISHER,
                    origin="upstream")
    pack.name = node.get("name") or pack.name or pack_id
    pack.description = node.get("description") or pack.description
    pack.repository = node.get("repository") or pack.repository
    pack.license = node.get("license") or pack.license
    session.add(pack)
    session.flush()
    from hearth.registry_server.publishing.services import read_archive_manifest

    try:
        manifest = read_archive_manifest(tmp)
    except ApiError:  # upstream packs may predate pyproject manifests; keep what the upstream told us
        manifest = {"name": pack.id, "version": ver, "description": pack.description,
                    "dependencies": nv.get("dependencies") or []}
    vid = str(uuid.uuid4())
    # Claimed at birth: this request verifies it now, the background worker must not take it too.
    session.add(Version(id=vid, pack_id=pack.id, version=ver, status="pending", sha256=sha, size=size, blob_key=key,
                        changelog=nv.get("changelog") or "", dependencies=manifest.get("dependencies") or [],
                        requires_python=manifest.get("requires_python"), manifest=manifest,
                        verify_claimed_at=utcnow(), verify_claimed_by=claimant()))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # another request cached it first
        return
    verify_version(server, vid)
    session.expire_all()
