"""Kill the server mid-upload: after a restart there is no version without its file and no file without its
version, and the same upload URL still works."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from hearth.registry.archive import build_archive
from hearth.registry_server.packs.models import Version
from tests.harness.packs import make_pack
from tests.registry_server.helpers import unique


def _blobs(hub) -> list[str]:  # noqa: ANN001
    return sorted(b.key for b in hub.server.storage.list("archives/"))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_kill_during_upload_leaves_nothing_half_written(make_server, tmp_path: Path, kind: str):
    server, hub = make_server(kind)
    pub, token = hub.new_publisher()
    name = unique("crash-")
    arc = build_archive(make_pack(tmp_path, name, "1.0.0", pub, extra_files={"data.txt": "z" * 100_000}),
                        tmp_path / "a.zip")
    signed = hub.reserve(pub, token, name, "1.0.0").json()["signedUrl"]
    data = arc.path.read_bytes()
    half_sent = threading.Event()

    def body():
        yield data[: len(data) // 2]
        half_sent.set()
        time.sleep(30)  # the server dies while waiting for the rest
        yield data[len(data) // 2:]

    def upload() -> None:
        try:
            httpx.put(signed, content=body(), headers={"Content-Type": "application/zip"}, timeout=60)
        except httpx.HTTPError:
            pass

    t = threading.Thread(target=upload, daemon=True)
    t.start()
    assert half_sent.wait(10)
    tmp_dir = hub.settings.tmp_dir
    deadline = time.monotonic() + 10
    while not any(p.name.startswith("upload-") for p in tmp_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(p.name.startswith("upload-") for p in tmp_dir.iterdir()), "the upload never reached the server"
    server.kill()

    server.start()  # same data, same database: the restart cleans up
    assert not any(p.name.startswith("upload-") for p in tmp_dir.iterdir())
    with hub.session() as s:
        assert s.exec(select(Version).where(Version.pack_id == name)).all() == []
    assert _blobs(hub) == []
    assert hub.http.get(f"/nodes/{name}/versions").status_code == 404

    # Nothing was recorded, so the unused single-use URL still works (at the restarted server's address).
    retry = signed.replace(signed.split("/uploads/")[0], server.url)
    hub.http = httpx.Client(base_url=server.url, timeout=30)
    assert httpx.put(retry, content=data, headers={"Content-Type": "application/zip"}).status_code == 200
    assert hub.wait(name, "1.0.0")["status"] == "active"
    assert _blobs(hub) == [f"archives/{arc.sha256[:2]}/{arc.sha256}.zip"]


def test_orphan_blobs_are_collected_at_start(make_server, tmp_path: Path):
    """A crash between storing a blob and committing its version leaves a blob nobody refers to."""
    server, hub = make_server("sqlite", gc_grace_s=0)
    pub, token = hub.new_publisher()
    name = unique("keep-")
    kept = hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token)
    files = Path(hub.settings.storage)
    orphan = files / "archives" / "ab" / ("ab" + "0" * 62 + ".zip")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"orphan")
    part = files / "archives" / "cd" / ".x.zip.123.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    os.utime(part, (old, old))
    server.kill()
    server.start()
    assert not orphan.exists() and not part.exists()
    assert f"archives/{kept['sha256'][:2]}/{kept['sha256']}.zip" in _blobs(hub)
    hub.http = httpx.Client(base_url=server.url, timeout=30)
    assert hub.http.get(f"/api/v1/files/{kept['sha256']}").status_code == 200
    assert hub.http.get(f"/api/v1/files/{kept['wheel'].split('/')[-2]}").status_code == 200


def test_claim_of_a_dead_verifier_is_released_at_start(make_server, tmp_path: Path):
    """A server killed mid-verification leaves a claimed, pending version; the restart verifies it at once."""
    import socket

    from sqlalchemy import update

    from hearth.registry_server.db import utcnow

    server, hub = make_server("sqlite")
    pub, token = hub.new_publisher()
    name = unique("claimed-")
    hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token)
    server.kill()
    dead = subprocess_pid_that_exited()
    with hub.session() as s:
        s.execute(update(Version).where(Version.pack_id == name).values(
            status="pending", verify_claimed_at=utcnow(), verify_claimed_by=f"{socket.gethostname()}:{dead}"))
        s.commit()
    server.start()
    hub.http = httpx.Client(base_url=server.url, timeout=30)
    assert hub.wait(name, "1.0.0", timeout=10)["status"] == "active"


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
