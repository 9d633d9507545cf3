"""Two registry processes on one PostgreSQL database and one S3 bucket: first versions of a new pack uploaded at
the same moment both land, and an upload that loses frees its version and its archive at once."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import httpx
import pytest

from hearth.registry.archive import build_archive
from tests.harness.packs import make_pack
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub, unique
from tests.registry_server.servers import RegistryProcess


@pytest.fixture
def two_processes(postgres, s3, tmp_path: Path):  # noqa: ANN001, ANN201
    """Two server processes, each with its own data folder, sharing a database and a bucket."""
    bucket = unique("bucket-")
    s3.create_bucket(bucket)
    base = settings_for(tmp_path / "a", db_url=postgres.create_database(unique("hearth_")),
                        storage_url=f"s3://{bucket}/registry")
    procs, hubs = [], []
    for label in ("a", "b"):
        settings = dataclasses.replace(base, data_dir=tmp_path / label)
        proc = RegistryProcess(settings, s3.env)
        settings.public_url = proc.url  # each process names itself in the upload URLs it signs
        procs.append(proc.start())
        hubs.append(Hub(proc.url, settings))
    yield hubs
    for h, proc in zip(hubs, procs, strict=True):
        h.close()
        proc.stop()


def _archives(hub: Hub) -> set[str]:
    return {b.key for b in hub.server.storage.list("archives/")}


def _put_together(urls_and_data: list[tuple[str, bytes]]) -> list[httpx.Response]:
    """PUT every archive at the same moment, each from its own thread."""
    start = threading.Barrier(len(urls_and_data))
    answers: list[httpx.Response | None] = [None] * len(urls_and_data)

    def put(i: int, url: str, data: bytes) -> None:
        start.wait()
        answers[i] = httpx.put(url, content=data, headers={"Content-Type": "application/zip"}, timeout=30)

    threads = [threading.Thread(target=put, args=(i, u, d)) for i, (u, d) in enumerate(urls_and_data)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers  # type: ignore[return-value]


def test_concurrent_first_versions_of_a_new_pack_both_land(two_processes, tmp_path: Path):
    a, b = two_processes
    pub, token = a.new_publisher()
    for round_ in range(10):  # the old code lost one upload in about a third of the rounds
        name = unique("race-")
        uploads = []
        for hub, version in ((a, "1.0.0"), (b, "1.0.1")):
            folder = make_pack(tmp_path / f"{round_}-{version}", name, version, pub)
            arc = build_archive(folder, tmp_path / f"{name}-{version}.zip")
            r = hub.reserve(pub, token, name, version)
            assert r.status_code == 201, r.text
            uploads.append((r.json()["signedUrl"], arc.path.read_bytes()))
        answers = _put_together(uploads)
        assert [r.status_code for r in answers] == [200, 200], f"round {round_}: {[r.text for r in answers]}"
        for hub in (a, b):
            listed = hub.http.get(f"/nodes/{name}/versions").json()
            assert sorted(v["version"] for v in listed) == ["1.0.0", "1.0.1"]


def test_a_losing_upload_frees_its_version_and_its_archive(two_processes, tmp_path: Path):
    """A second publisher's upload to a pack id the first one has just taken is refused; its reservation and its
    archive go at once, so the version can be published again now, not when the upload URL expires."""
    a, b = two_processes
    owner, owner_token = a.new_publisher()
    other, other_token = a.new_publisher()
    name = unique("taken-")
    first = build_archive(make_pack(tmp_path / "owner", name, "1.0.0", owner), tmp_path / "first.zip")
    late = build_archive(make_pack(tmp_path / "other", name, "1.0.1", other), tmp_path / "late.zip")
    owner_url = a.reserve(owner, owner_token, name, "1.0.0").json()["signedUrl"]
    r = b.reserve(other, other_token, name, "1.0.1")  # the pack does not exist yet, so the name is free
    assert r.status_code == 201, r.text
    assert a.upload(owner_url, first.path.read_bytes()).status_code == 200

    refused = b.upload(r.json()["signedUrl"], late.path.read_bytes())
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "pack_id_taken", refused.text
    assert _archives(a) == {f"archives/{first.sha256[:2]}/{first.sha256}.zip"}

    # The owner publishes 1.0.1 right away, through either process: the loser's reservation is gone.
    mine = build_archive(make_pack(tmp_path / "owner2", name, "1.0.1", owner), tmp_path / "mine.zip")
    again = a.reserve(owner, owner_token, name, "1.0.1")
    assert again.status_code == 201, again.text
    assert a.upload(again.json()["signedUrl"], mine.path.read_bytes()).status_code == 200
    listed = b.http.get(f"/nodes/{name}/versions").json()
    assert sorted(v["version"] for v in listed) == ["1.0.0", "1.0.1"]
