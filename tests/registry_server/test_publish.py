"""Publishing and reading through ComfyUI's registry API, against every backend."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import httpx

from tests.harness.packs import make_pack
from tests.registry_server.helpers import Hub, unique


def test_publish_verify_install_roundtrip(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    name = unique("cool-nodes-")
    cls = unique("CoolNode")
    pack = make_pack(tmp_path, name, "1.0.0", pub, node_class=cls, description="Makes text louder")
    detail = hub.publish_dir(pack, token)
    assert detail["status"] == "active", detail
    assert [n["name"] for n in detail["node_classes"]] == [cls]

    inst = hub.http.get(f"/nodes/{name}/install").json()
    assert inst["version"] == "1.0.0"
    blob = httpx.get(inst["downloadUrl"]).content
    assert hashlib.sha256(blob).hexdigest() == detail["sha256"] == inst["sha256"]

    node = hub.http.get(f"/nodes/{name}").json()
    assert node["latest_version"]["version"] == "1.0.0"
    assert node["description"] == "Makes text louder"
    assert hub.http.get(f"/comfy-nodes/{cls}/node").json()["id"] == name
    assert [v["version"] for v in hub.http.get(f"/nodes/{name}/versions").json()] == ["1.0.0"]
    found = hub.http.get("/nodes/search", params={"search": name}).json()
    assert [n["id"] for n in found["nodes"]] == [name]
    listing = hub.http.get("/nodes", params={"limit": 1000}).json()
    assert name in {n["id"] for n in listing["nodes"]} and listing["total"] >= 1
    bulk = hub.http.post("/bulk/nodes/versions", json={"node_versions": [
        {"node_id": name, "version": "1.0.0"}, {"node_id": name, "version": "9.9.9"}]}).json()["node_versions"]
    assert [b["status"] for b in bulk] == ["success", "not_found"]
    assert bulk[0]["node_version"]["downloadUrl"] == inst["downloadUrl"]

    # Installs are counted (batched in memory, written by the background job; read from the database, since
    # answers may come from the read cache for up to its TTL).
    from hearth.registry_server.packs.models import Pack

    deadline = time.monotonic() + 10
    while True:
        with hub.session() as s:
            downloads = s.get(Pack, name).downloads
        if downloads >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert downloads == 1


def test_pack_ids_are_case_insensitive(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    name = unique("Mixed_Case.Pack")
    hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token)
    assert hub.http.get(f"/nodes/{name.lower().replace('_', '-')}").json()["id"] == name
    other, other_token = hub.new_publisher()
    r = hub.reserve(other, other_token, name.upper(), "1.0.0")
    assert r.status_code == 409 and r.json()["error"]["code"] == "pack_id_taken"


def test_latest_is_highest_active_non_yanked_semver(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    name = unique("multi-")
    for v in ["1.2.0", "1.10.0", "1.9.0", "1.10.1-rc.1"]:
        hub.publish_dir(make_pack(tmp_path, name, v, pub), token)
    assert hub.http.get(f"/nodes/{name}/install").json()["version"] == "1.10.1-rc.1"
    admin = {"Authorization": f"Bearer {hub.admin_token()}"}
    for target in (f"{name}@1.10.1-rc.1", f"{name}@1.10.0"):
        assert hub.http.post("/api/v1/admin/yank", json={"target": target, "reason": "broken"},
                             headers=admin).status_code == 200
    assert hub.http.get(f"/nodes/{name}/install").json()["version"] == "1.9.0"
    # A yanked version still installs when asked for by name (PEP 592 semantics).
    assert hub.http.get(f"/nodes/{name}/install", params={"version": "1.10.0"}).json()["version"] == "1.10.0"
    versions = [v["version"] for v in hub.http.get(f"/nodes/{name}/versions").json()]
    assert versions == ["1.10.1-rc.1", "1.10.0", "1.9.0", "1.2.0"]


def test_version_is_never_reused(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    name = unique("imm-")
    hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token)
    r = hub.reserve(pub, token, name, "1.0.0")
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_exists"
    admin = {"Authorization": f"Bearer {hub.admin_token()}"}
    assert hub.http.post("/api/v1/admin/delete", json={"target": f"{name}@1.0.0"}, headers=admin).status_code == 200
    assert hub.http.get(f"/nodes/{name}/install", params={"version": "1.0.0"}).status_code == 404
    r = hub.reserve(pub, token, name, "1.0.0")
    assert r.status_code == 409 and "immutable" in r.json()["error"]["message"]


def test_concurrent_identical_publishes_exactly_one_wins(hub: Hub):
    pub, token = hub.new_publisher()
    name = unique("race-")
    results: list[int] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(hub.reserve(pub, token, name, "1.0.0").status_code)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201] + [409] * 7


def test_concurrent_uploads_to_one_url_exactly_one_wins(hub: Hub, tmp_path: Path):
    from hearth.registry.archive import build_archive

    pub, token = hub.new_publisher()
    name = unique("race-up-")
    arc = build_archive(make_pack(tmp_path, name, "1.0.0", pub), tmp_path / "a.zip")
    url = hub.reserve(pub, token, name, "1.0.0").json()["signedUrl"]
    data = arc.path.read_bytes()
    results: list[int] = []
    barrier = threading.Barrier(6)

    def go() -> None:
        barrier.wait()
        results.append(hub.upload(url, data).status_code)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * 5
    assert len(hub.http.get(f"/nodes/{name}/versions").json()) == 1


def test_two_publishers_racing_for_a_new_pack_id_one_wins(hub: Hub, tmp_path: Path):
    from hearth.registry.archive import build_archive

    name = unique("contested-")
    (pub_a, tok_a), (pub_b, tok_b) = hub.new_publisher(), hub.new_publisher()
    jobs = []
    for pub, tok, ver in ((pub_a, tok_a, "1.0.0"), (pub_b, tok_b, "1.0.1")):
        arc = build_archive(make_pack(tmp_path / pub, name, ver, pub), tmp_path / f"{pub}.zip")
        r = hub.reserve(pub, tok, name, ver)
        assert r.status_code == 201, r.text
        jobs.append((r.json()["signedUrl"], arc.path.read_bytes()))
    results: list[int] = []
    barrier = threading.Barrier(2)

    def go(url: str, data: bytes) -> None:
        barrier.wait()
        results.append(hub.upload(url, data).status_code)

    threads = [threading.Thread(target=go, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    owner = hub.http.get(f"/api/v1/packs/{name}").json()
    assert owner["publisher"] in (pub_a, pub_b) and len(owner["versions"]) == 1
