"""Verification of a stored version: sandbox checks (or Hearth's own fallback), findings, node classes, wheel."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, or_, update
from sqlmodel import Session, select

from hearth.registry.pids import pid_alive
from hearth.registry_server.db import utcnow
from hearth.registry_server.settings import Settings
from hearth.registry_server.verification import checks

log = logging.getLogger("hearth.registry.verify")
# A verification that raised (a blob the storage cannot read, say) is tried again this much later, not at once by
# every process as soon as its claim times out.
RETRY_AFTER_FAILURE = timedelta(minutes=10)
SEVERITY_ERRORS = {"error", "critical", "high"}


def _sandbox():  # noqa: ANN202
    """The sandbox package, or None when it is not installed (then Hearth's own minimal checks run)."""
    try:
        from hearth import sandbox
        from hearth.sandbox import verify  # noqa: F401 - the entry point we need
    except ImportError:
        return None
    return sandbox


def verifier_name() -> str:
    return "sandbox" if _sandbox() else "hearth-builtin (sandbox not installed: archive checks and static scan only)"


def _limits(settings: Settings) -> checks.Limits:
    return checks.Limits(settings.max_archive_files, settings.max_unpacked_bytes, settings.max_compression_ratio)


def _sandbox_limits(sb, settings: Settings):  # noqa: ANN001, ANN202
    return sb.Limits(max_files=settings.max_archive_files, max_total_bytes=settings.max_unpacked_bytes,
                     max_ratio=float(settings.max_compression_ratio))


def _finding(obj) -> checks.Finding:  # noqa: ANN001
    if isinstance(obj, checks.Finding):
        return obj
    get = obj.get if isinstance(obj, dict) else lambda k, d=None: getattr(obj, k, d)
    return checks.Finding(str(get("rule", "")), str(get("severity", "medium")), str(get("path", "") or ""),
                          get("line") or None, str(get("snippet", "") or "")[:500], str(get("message", "") or ""))


def archive_problems(path: Path, settings: Settings) -> list[checks.Finding]:
    """Reasons an upload is unacceptable (traversal, links, bombs, not a zip); empty when it is fine.

    Our own structural checks always run, so these guarantees hold whether or not the sandbox is installed;
    when it is, its archive checks run too and every one of its findings rejects (as the sandbox defines them).
    """
    problems = [f for f in checks.check_archive(str(path), _limits(settings)) if f.severity == "error"]
    sb = _sandbox()
    if sb is not None and not problems:
        problems = [_finding(f) for f in sb.check_archive(str(path), _sandbox_limits(sb, settings))]
    return problems


def _matches(s, f: checks.Finding) -> bool:  # noqa: ANN001 - admin.models.Suppression
    return f.rule == s.rule and s.path in ("*", f.path) and (not s.line or s.line == f.line)


def run_checks(archive: Path, settings: Settings, suppressions: list = ()) -> tuple[checks.Report, str]:
    """Verify an archive with the admins' suppressions applied; returns the report and the verifier's name."""
    sb = _sandbox()
    if sb is None:
        report = checks.scan_archive(str(archive), _limits(settings))
        if suppressions and report.verdict != "reject":
            report.findings = [f for f in report.findings if not any(_matches(s, f) for s in suppressions)]
            report.verdict = "flag" if any(f.severity in ("warning", "error") for f in report.findings) else "pass"
        return report, verifier_name()
    try:
        report = sb.verify(str(archive), isolate_import=settings.isolate_import,
                           limits=_sandbox_limits(sb, settings), tmp_dir=archive.parent,  # the work folder
                           # under --data: what a killed process leaves there is removed at the next start
                           suppressions=[sb.Suppression(s.rule, s.path, s.line, s.by, s.reason)
                                         for s in suppressions])
    except sb.ArchiveUnreadable as exc:
        return checks.Report("reject", [checks.Finding("archive.unreadable", "high", message=str(exc))]), "sandbox"
    return checks.Report(verdict=str(report.verdict), findings=[_finding(f) for f in report.findings],
                         nodes=[dict(n) for n in report.nodes], import_ok=bool(report.import_ok)), "sandbox"


def claimant() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def release_dead_claims(session: Session) -> int:
    """Give back claims held by processes of this host that no longer exist (a crash mid-verification), so
    their versions are verified now rather than when the claim times out."""
    from hearth.registry_server.packs.models import PENDING, Version

    host = socket.gethostname() + ":"
    released = 0
    rows = session.exec(select(Version.id, Version.verify_claimed_by).where(
        Version.status == PENDING, Version.verify_claimed_at.is_not(None),
        Version.verify_claimed_by.startswith(host))).all()
    for vid, by in rows:
        pid = by.rsplit(":", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            released += session.execute(update(Version).where(Version.id == vid, Version.verify_claimed_by == by)
                                        .values(verify_claimed_at=None, verify_claimed_by="")).rowcount
    session.commit()
    return released


def claim_next(session: Session, claim_timeout_s: float) -> str | None:
    """Atomically claim one pending version for this worker (works across processes and databases).

    A version is claimable when nobody claimed it or its claim was not renewed for `claim_timeout_s`: the
    claimant's heartbeat (see `claim_heartbeat`) stopped, so it died, wherever it ran.
    """
    from hearth.registry_server.packs.models import PENDING, Version

    now = utcnow()
    stale = now - timedelta(seconds=claim_timeout_s)
    claimable = (Version.status == PENDING, or_(Version.verify_claimed_at.is_(None), Version.verify_claimed_at < stale))
    for vid in session.exec(select(Version.id).where(*claimable).order_by(Version.uploaded_at).limit(5)).all():
        won = session.execute(update(Version).where(Version.id == vid, *claimable)
                              .values(verify_claimed_at=now, verify_claimed_by=claimant())).rowcount
        session.commit()
        if won == 1:
            return vid
    return None


def renew_claim(session: Session, version_id: str) -> bool:
    """Heartbeat: mark this process's claim on a pending version as alive now; False when the claim is no
    longer ours (another process took it over, or the version left pending)."""
    from hearth.registry_server.packs.models import PENDING, Version

    renewed = session.execute(update(Version).where(
        Version.id == version_id, Version.status == PENDING, Version.verify_claimed_by == claimant())
        .values(verify_claimed_at=utcnow())).rowcount
    session.commit()
    return renewed == 1


@contextlib.contextmanager
def claim_heartbeat(server, version_id: str) -> Iterator[None]:  # noqa: ANN001 - ServerContext (import cycle)
    """Renew the claim on `version_id` every quarter of the claim timeout while the block runs, so a slow but
    live verification keeps its version and a dead one's is taken over within the timeout."""
    stop = threading.Event()
    interval = max(0.05, server.settings.verify_claim_timeout_s / 4)

    def beat() -> None:
        while not stop.wait(interval):
            try:
                with Session(server.engine) as session:
                    if not renew_claim(session, version_id):
                        return
            except Exception:  # a database hiccup: try again next beat; the timeout has room for three misses
                log.warning("could not renew the verification claim on version %s", version_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"claim-heartbeat-{version_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def postpone_claim(session: Session, version_id: str, claim_timeout_s: float) -> None:
    """After a verification that raised: keep this process's claim so that it expires only after
    RETRY_AFTER_FAILURE, when any process may try again."""
    from hearth.registry_server.packs.models import PENDING, Version

    until = utcnow() + RETRY_AFTER_FAILURE - timedelta(seconds=claim_timeout_s)
    session.execute(update(Version).where(
        Version.id == version_id, Version.status == PENDING, Version.verify_claimed_by == claimant())
        .values(verify_claimed_at=until))
    session.commit()


def _still_claimed(session: Session, version_id: str) -> bool:
    """Inside the transaction that records a verdict: True when the claim is still this process's. The update
    locks the row (PostgreSQL) or the database (SQLite) until commit, so a takeover cannot slip in between."""
    from hearth.registry_server.packs.models import PENDING, Version

    return session.execute(update(Version).where(
        Version.id == version_id, Version.status == PENDING, Version.verify_claimed_by == claimant())
        .values(verify_claimed_at=utcnow()).execution_options(synchronize_session=False)).rowcount == 1


def review_reason(settings: Settings, publisher, origin: str = "local") -> str:  # noqa: ANN001 - Publisher
    """Why the publication policy holds a verified version for a reviewer; empty when it may go active.

    A mirror's copy of an upstream pack (origin "upstream") was published under the upstream's own policy, which
    only serves what it let go active; only `--review all` reviews those again.
    """
    if settings.review == "all":
        return "this registry reviews every version"
    if settings.review == "untrusted" and origin != "upstream" and (publisher is None or
                                                                     publisher.trust != "trusted"):
        return f"publisher {publisher.id if publisher else '?'!r} is not trusted by this registry's admins"
    return ""


def verify_version(server, version_id: str) -> str:  # noqa: ANN001 - ServerContext (import cycle)
    """Run the checks on one claimed version and record the outcome; returns the new status."""
    from hearth.registry_server.accounts.models import Publisher
    from hearth.registry_server.admin.services import audit
    from hearth.registry_server.packs.models import (
        ACTIVE,
        FLAGGED,
        PENDING,
        REVIEW,
        Finding,
        NodeClass,
        Pack,
        Version,
    )
    from hearth.registry_server.packs.services import refresh_pack
    from hearth.registry_server.simple.services import build_wheel
    from hearth.registry_server.storage.services import download_to_temp, wheel_key

    settings = server.settings
    work = Path(tempfile.mkdtemp(prefix=f"verify-{os.getpid()}-{version_id[:8]}-", dir=settings.tmp_dir))
    try:
        with claim_heartbeat(server, version_id), Session(server.engine, expire_on_commit=False) as session:
            version = session.get(Version, version_id)
            if version is None or version.status != PENDING:
                return version.status if version else "missing"
            pack = session.get(Pack, version.pack_id)
            archive = download_to_temp(server.storage, version.blob_key, work, ".zip")
            from hearth.registry_server.admin.services import suppressions_for

            try:
                report, verifier = run_checks(archive, settings, suppressions_for(session, pack.id))
            except Exception as exc:  # a crashing verifier flags the version instead of wedging the queue
                log.exception("verification of %s %s crashed", pack.id, version.version)
                report = checks.Report("flag", [checks.Finding("verifier.crashed", "error",
                                                               message=f"verification failed: {exc}")])
                verifier = verifier_name()
            if report.verdict != "reject":
                wheel = build_wheel(archive, pack.id, version.version, version.manifest, version.dependencies, work)
                wkey = wheel_key(wheel.sha256, wheel.filename)
                server.storage.put_file(wkey, wheel.path)
                meta = work / "METADATA"
                meta.write_bytes(wheel.metadata)
                server.storage.put_file(wkey + ".metadata", meta)  # PEP 658: resolvers skip the download
                version.wheel_filename, version.wheel_sha256, version.wheel_size = (
                    wheel.filename, wheel.sha256, wheel.size)
                version.wheel_key, version.wheel_metadata_sha256 = wkey, wheel.metadata_sha256
            if not _still_claimed(session, version_id):
                # This process stalled past the claim timeout and a survivor took the version over: its
                # verdict stands, ours is dropped, so each version is verified exactly once.
                log.warning("verification of %s %s was taken over by another process; result dropped",
                            pack.id, version.version)
                session.rollback()
                return "taken over"
            session.execute(delete(Finding).where(Finding.version_id == version_id))
            session.execute(delete(NodeClass).where(NodeClass.version_id == version_id))
            for f in report.findings:
                session.add(Finding(version_id=version_id, rule=f.rule, severity=f.severity, path=f.path,
                                    line=f.line, snippet=f.snippet, message=f.message))
            seen = set()
            for n in report.nodes:
                name = str(n.get("name", ""))[:200]
                if name and name not in seen:
                    seen.add(name)
                    session.add(NodeClass(version_id=version_id, name=name, category=str(n.get("category") or ""),
                                          kind=str(n.get("kind") or ""), definition=n))
            version.status = ACTIVE if report.verdict == "pass" else FLAGGED
            version.status_reason = {"pass": "verified", "flag": "flagged for review",
                                     "reject": "rejected by verification"}.get(report.verdict, report.verdict)
            why = review_reason(settings, session.get(Publisher, pack.publisher_id), pack.origin)
            if why:
                # The policy, not the scan, decides: whatever the verdict, a human looks first.
                version.status, version.status_reason = REVIEW, f"waiting for review: {why}"
            version.verdict, version.verifier, version.import_ok = report.verdict, verifier, report.import_ok
            version.verified_at = utcnow()
            session.add(version)
            session.flush()
            refresh_pack(session, pack)
            audit(session, "system:verifier", "version.verify", f"{pack.id}@{version.version}",
                  {"verdict": report.verdict, "verifier": verifier, "findings": len(report.findings)})
            session.commit()
            server.cache.clear()  # the version's status, the pack's latest and search results changed
            log.info("verified %s %s: %s", pack.id, version.version, version.status)
            return version.status
    finally:
        shutil.rmtree(work, ignore_errors=True)
