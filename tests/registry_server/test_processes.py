"""Several server processes on one PostgreSQL database and one S3 bucket: a write committed late still clears the
other process's cache, and a second `comfy registry serve` on the database needs a shared --public-url."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hearth.registry_server.admin import services as admin
from hearth.registry_server.packs.models import Pack
from hearth.registry_server.packs.services import refresh_pack
from tests.harness.packs import make_pack
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub, unique
from tests.registry_server.servers import ROOT, MotoS3, PostgresCluster, RegistryProcess, free_port


@pytest.fixture
def pair(tmp_path: Path, postgres: PostgresCluster, s3: MotoS3) -> Iterator[tuple[Hub, Hub]]:
    """Two server processes, as behind a load balancer: one database, one bucket, one public URL."""
    bucket = unique("bucket-")
    s3.create_bucket(bucket)
    base = settings_for(tmp_path / "a", db_url=postgres.create_database(unique("hearth_")),
                        storage_url=f"s3://{bucket}/registry", cache_ttl_s=60.0, cache_watch_s=0.2)
    a = RegistryProcess(base, s3.env)
    base.public_url = a.url
    b = RegistryProcess(dataclasses.replace(base, data_dir=tmp_path / "b"), s3.env)
    servers = [a.start(), b.start()]
    hubs = [Hub(a.url, base), Hub(b.url, b.settings)]
    yield hubs[0], hubs[1]
    for h in hubs:
        h.close()
    for s in servers:
        s.stop()


def test_a_write_that_commits_after_a_later_one_still_clears_the_other_process_cache(pair, tmp_path: Path):
    a, b = pair
    pub, token = a.new_publisher()
    name = unique("slow-")
    assert a.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token)["status"] == "active"
    slow = a.session()
    pack = slow.get(Pack, name)
    pack.banned = True
    refresh_pack(slow, pack)
    admin.audit(slow, "test", "ban", name)
    slow.flush()  # the slow writer takes its audit id now ...
    with a.session() as fast:  # ... a faster writer takes the next one and commits first
        admin.audit(fast, "test", "note", "unrelated")
        fast.commit()
    time.sleep(1.0)  # B's watcher has seen the faster write
    assert b.http.get(f"/nodes/{name}").status_code == 200  # and caches the page as it stands
    slow.commit()
    slow.close()
    started = time.monotonic()
    while b.http.get(f"/nodes/{name}").status_code != 404:
        assert time.monotonic() - started < 5, "a ban committed after a later write never showed on the other process"
        time.sleep(0.05)


def _serve(settings, *extra: str) -> subprocess.Popen:  # noqa: ANN001
    port = free_port()
    cmd = [sys.executable, "-m", "hearth.cli.main", "registry", "serve", "--port", str(port), "--data",
           str(settings.data_dir), "--db", settings.db_url, "--storage", settings.storage_url, *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc.port = port
    return proc


def test_a_second_server_on_one_database_needs_a_public_url(pair, tmp_path: Path):
    a, _ = pair
    settings = dataclasses.replace(a.settings, data_dir=tmp_path / "c")
    refused = _serve(settings)
    out, _ = refused.communicate(timeout=60)
    assert refused.returncode == 2, out
    assert "--public-url" in out and "Traceback" not in out and len(out.strip().splitlines()) == 1, out
    ok = _serve(settings, "--public-url", a.url)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert ok.poll() is None, ok.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{ok.port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server with --public-url did not start"
            time.sleep(0.1)
    finally:
        ok.terminate()
        ok.wait(10)
