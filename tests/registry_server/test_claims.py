"""Verification claims across processes: two servers on one PostgreSQL database and one S3 bucket. A claimant
killed with SIGKILL is replaced by the survivor within seconds; a slow but live claimant keeps its version."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from sqlmodel import select

from hearth.registry_server.admin.models import AuditEntry
from hearth.registry_server.packs.models import Version
from tests.harness.packs import NODE_SOURCE, class_name, make_pack
from tests.registry_server.helpers import Hub, unique
from tests.registry_server.servers import RegistryProcess

CLAIM_TIMEOUT_S = 1.0


@pytest.fixture
def two_servers(request: pytest.FixtureRequest, tmp_path: Path):
    """Two registry processes, as two hosts behind one load balancer: one database, one bucket, own data
    folders; the first one's address stands in for the shared public URL."""
    from tests.registry_server.conftest import _backend_settings

    moto = request.getfixturevalue("s3")
    base, _ = _backend_settings(request, "postgres", tmp_path / "a", verify_claim_timeout_s=CLAIM_TIMEOUT_S,
                                verify_poll_s=0.1)
    bucket = unique("bucket-")
    moto.create_bucket(bucket)
    base.storage_url = f"s3://{bucket}/registry"
    first = RegistryProcess(base, moto.env)
    base.public_url = first.url
    second = RegistryProcess(dataclasses.replace(base, data_dir=tmp_path / "b"), moto.env)
    servers = [first.start(), second.start()]
    hub = Hub(first.url, base)
    yield servers, hub
    hub.close()
    for s in servers:
        s.stop()


def _slow_pack(root: Path, publisher: str, seconds: float) -> tuple[Path, str]:
    name = unique("slow-")
    pack = make_pack(root, name, "1.0.0", publisher)
    # Importing the pack (the sandbox's isolated import) takes a while: the verification is in progress.
    (pack / "__init__.py").write_text(f"import time\ntime.sleep({seconds})\n"
                                      + NODE_SOURCE.format(cls=class_name(name), category=name))
    return pack, name


def _claim(hub: Hub, name: str) -> tuple[str, str]:
    with hub.session() as s:
        v = s.exec(select(Version).where(Version.pack_id == name)).one()
        return v.status, v.verify_claimed_by


def _verifications(hub: Hub, name: str) -> int:
    with hub.session() as s:
        return len(s.exec(select(AuditEntry).where(AuditEntry.action == "version.verify",
                                                   AuditEntry.target == f"{name}@1.0.0")).all())


def _wait_for_claim(hub: Hub, name: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, by = _claim(hub, name)
        if by:
            return by
        time.sleep(0.02)
    raise AssertionError(f"nobody claimed {name} within {timeout}s (status {status})")


def test_dead_claimant_is_replaced_within_seconds(two_servers, tmp_path: Path):
    servers, hub = two_servers
    pub, token = hub.new_publisher()
    pack, name = _slow_pack(tmp_path, pub, 4)
    hub.publish_dir(pack, token, wait=False)
    by = _wait_for_claim(hub, name)
    pid = int(by.rsplit(":", 1)[-1])
    victim = next(s for s in servers if s.proc.pid == pid)
    survivor = next(s for s in servers if s is not victim)
    time.sleep(0.5)  # mid-verification
    victim.kill()

    killed_at = time.monotonic()
    while _claim(hub, name)[1] == by and time.monotonic() - killed_at < 15:
        time.sleep(0.05)
    taken_after = time.monotonic() - killed_at
    status, new_by = _claim(hub, name)
    assert new_by == f"{by.rsplit(':', 1)[0]}:{survivor.proc.pid}" or status != "pending", (status, new_by)
    assert taken_after < 5 * CLAIM_TIMEOUT_S, f"the survivor took the claim over only after {taken_after:.1f}s"

    hub.http.base_url = survivor.url
    done = hub.wait(name, "1.0.0", timeout=30)
    assert done["status"] != "pending"
    assert _verifications(hub, name) == 1


def test_slow_live_claimant_keeps_its_version(two_servers, tmp_path: Path):
    """The verification lasts several claim timeouts: the heartbeat keeps it, nobody verifies it twice."""
    servers, hub = two_servers
    pub, token = hub.new_publisher()
    pack, name = _slow_pack(tmp_path, pub, 4 * CLAIM_TIMEOUT_S)
    hub.publish_dir(pack, token, wait=False)
    by = _wait_for_claim(hub, name)
    holders = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, holder = _claim(hub, name)
        if status != "pending":
            break
        holders.add(holder)
        time.sleep(0.05)
    assert status != "pending"
    assert holders == {by}, f"the claim moved while its holder was alive and working: {holders}"
    time.sleep(1)  # a second verifier, had there been one, would record its verdict now
    assert _verifications(hub, name) == 1


def test_a_failing_verification_is_not_retried_at_every_timeout(two_servers, tmp_path: Path):
    """Short claims must not turn a version whose verification raises (its archive is gone from the bucket) into
    a retry loop on every process: it is tried again only after the failure back-off."""
    from sqlalchemy import update

    servers, hub = two_servers
    pub, token = hub.new_publisher()
    name = unique("gone-")
    hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token)
    with hub.session() as s:
        v = s.exec(select(Version).where(Version.pack_id == name)).one()
        hub.server.storage.delete(v.blob_key)
        s.execute(update(Version).where(Version.id == v.id).values(status="pending", verify_claimed_at=None,
                                                                   verify_claimed_by=""))
        s.commit()
    time.sleep(6 * CLAIM_TIMEOUT_S)
    failures = sum(s.log.read_text().count(f"verification of version {v.id} failed") for s in servers)
    assert failures == 1
    assert _claim(hub, name)[0] == "pending"
