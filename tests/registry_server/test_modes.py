"""Private mode (every read needs a read token) and mirror mode (pull-through cache of an upstream)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.harness.packs import make_pack
from tests.registry_server.helpers import unique


def test_private_mode_needs_read_tokens(private_hub, tmp_path: Path):
    hub = private_hub
    pub, token = hub.new_publisher()
    name = unique("secret-")
    read = hub.token(pub, "read")
    auth = {"Authorization": f"Bearer {read}"}
    r = hub.reserve(pub, token, name, "1.0.0")
    assert r.status_code == 201  # publishing authenticates with the publish token as before
    from hearth.registry.archive import build_archive

    arc = build_archive(make_pack(tmp_path, name, "1.0.0", pub), tmp_path / "a.zip")
    assert hub.upload(r.json()["signedUrl"], arc.path.read_bytes()).status_code == 200
    hub.wait(name, "1.0.0", headers=auth)

    for path in ("/nodes", f"/nodes/{name}", f"/nodes/{name}/install", "/api/v1/search?q=x", "/simple/",
                 f"/simple/{name}/", f"/files/{arc.sha256}/x.zip", "/", f"/packs/{name}"):
        r = hub.http.get(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "token_required"
        assert hub.http.get(path, headers=auth).status_code == 200, path
    assert hub.http.get("/nodes", headers={"Authorization": "Bearer hth_bad"}).status_code == 401
    # uv and pip send the token as HTTP Basic credentials embedded in the index URL.
    assert httpx.get(f"{hub.url}/simple/{name}/", auth=("__token__", read)).status_code == 200
    assert hub.http.get("/healthz").status_code == 200


@pytest.mark.slow
def test_mirror_serves_upstream_packs_and_keeps_them_when_upstream_is_down(mirror_pair, tmp_path: Path):
    upstream_server, upstream, mirror = mirror_pair
    pub, token = upstream.new_publisher()
    name, cls = unique("far-"), unique("FarNode")
    upstream.publish_dir(make_pack(tmp_path, name, "1.0.0", pub, node_class=cls), token)
    upstream.publish_dir(make_pack(tmp_path / "b", name, "1.1.0", pub, node_class=cls), token)

    inst = mirror.http.get(f"/nodes/{name}/install").json()
    assert inst["version"] == "1.1.0" and inst["downloadUrl"].startswith(mirror.url)
    assert mirror.http.get(f"/nodes/{name}/install", params={"version": "1.0.0"}).json()["version"] == "1.0.0"
    detail = mirror.http.get(f"/api/v1/packs/{name}").json()
    assert {v["version"] for v in detail["versions"]} == {"1.0.0", "1.1.0"}
    assert detail["versions"][0]["node_classes"][0]["name"] == cls  # verified locally too

    upstream_server.kill()
    try:
        inst = mirror.http.get(f"/nodes/{name}/install").json()
        assert inst["version"] == "1.1.0"
        assert httpx.get(inst["downloadUrl"]).status_code == 200
        r = mirror.http.get(f"/nodes/{unique('never-cached-')}/install")
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unavailable"
    finally:
        upstream_server.start()  # same port and data: the mirror finds it again
        upstream.http = httpx.Client(base_url=upstream.url, timeout=30)  # no pooled connection to the dead one


def test_local_packs_shadow_upstream_names(mirror_pair, tmp_path: Path):
    _, upstream, mirror = mirror_pair
    name = unique("shadowed-")
    pub, token = upstream.new_publisher()
    upstream.publish_dir(make_pack(tmp_path / "up", name, "9.0.0", pub), token)
    local_pub, local_token = mirror.new_publisher()
    mirror.publish_dir(make_pack(tmp_path / "local", name, "1.0.0", local_pub), local_token)
    assert mirror.http.get(f"/nodes/{name}/install").json()["version"] == "1.0.0"
    assert mirror.http.get(f"/nodes/{name}/install", params={"version": "9.0.0"}).status_code == 404

    # A name cached from the upstream first is taken over by the first local publish.
    cached = unique("cached-")
    upstream.publish_dir(make_pack(tmp_path / "up", cached, "2.0.0", pub), token)
    assert mirror.http.get(f"/nodes/{cached}/install").json()["version"] == "2.0.0"
    mirror.publish_dir(make_pack(tmp_path / "local", cached, "2.1.0", local_pub), local_token)
    upstream.publish_dir(make_pack(tmp_path / "up", cached, "3.0.0", pub), token)
    assert mirror.http.get(f"/nodes/{cached}/install", params={"version": "3.0.0"}).status_code == 404
    assert mirror.http.get(f"/api/v1/packs/{cached}").json()["publisher"] == local_pub


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_command_starts_a_registry(tmp_path: Path, workers: int):
    """`comfy registry serve` itself (through the click group) answers on loopback, with one or more processes
    starting on a fresh database together."""
    from tests.registry_server.servers import ROOT, _wait_http, free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from hearth.cli.registry import registry; registry()", "serve", "--port", str(port),
         "--data", str(tmp_path / "d"), "--no-isolate-import", "--workers", str(workers)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        for _ in range(4 * workers):  # several connections, so every worker answers at least once, likely
            assert httpx.get(f"http://127.0.0.1:{port}/nodes").json()["total"] == 0
        assert (tmp_path / "d" / "hearth.registry.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)
