"""Hearth's /api/v1 (ranked search, details, download by hash) and the server-rendered pages."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from tests.harness.packs import make_pack
from tests.registry_server.helpers import Hub, unique


@pytest.fixture
def catalogue(hub: Hub, tmp_path: Path) -> dict:
    """Three packs sharing a search word in different places, so ranking is visible."""
    pub, token = hub.new_publisher()
    word = unique("zeta")
    packs = {
        "id": unique(f"{word}-tools-"),           # the word in the pack id
        "node": unique("imaging-"),               # the word only as a node class
        "desc": unique("misc-"),                  # the word only in the description
    }
    hub.publish_dir(make_pack(tmp_path, packs["id"], "1.0.0", pub), token)
    hub.publish_dir(make_pack(tmp_path, packs["node"], "1.0.0", pub, node_class=f"{word.title()}Sharpen"), token)
    hub.publish_dir(make_pack(tmp_path, packs["desc"], "1.0.0", pub, description=f"Works well with {word} packs"),
                    token)
    return {"word": word, "publisher": pub, "packs": packs}


def test_ranked_search(hub: Hub, catalogue: dict):
    r = hub.http.get("/api/v1/search", params={"q": catalogue["word"]}).json()
    assert [p["id"] for p in r["results"]] == [catalogue["packs"][k] for k in ("id", "node", "desc")]
    assert r["total"] == 3
    by_class = hub.http.get("/api/v1/search", params={"q": f"{catalogue['word']}sharpen"}).json()
    assert [p["id"] for p in by_class["results"]] == [catalogue["packs"]["node"]]
    by_publisher = hub.http.get("/api/v1/search", params={"q": catalogue["publisher"]}).json()
    assert by_publisher["total"] == 3
    assert hub.http.get("/api/v1/search", params={"q": f"{catalogue['word']} nomatchword"}).json()["total"] == 0


def test_pack_details_and_download_by_hash(hub: Hub, catalogue: dict):
    name = catalogue["packs"]["node"]
    d = hub.http.get(f"/api/v1/packs/{name}").json()
    assert d["latest_version"] == "1.0.0" and d["install"]["uv"].endswith(name)
    v = d["versions"][0]
    assert v["node_classes"][0]["name"].endswith("Sharpen") and v["findings"] == []
    blob = hub.http.get(f"/api/v1/files/{v['sha256']}").content
    assert hashlib.sha256(blob).hexdigest() == v["sha256"]
    nc = hub.http.get(f"/api/v1/node-classes/{v['node_classes'][0]['name']}").json()
    assert [p["id"] for p in nc["packs"]] == [name]
    pub = hub.http.get(f"/api/v1/publishers/{catalogue['publisher']}").json()
    assert len(pub["packs"]) == 3
    assert hub.http.get("/api/v1/files/not-a-hash").status_code == 422
    assert "/api/v1/search" in hub.http.get("/openapi.json").json()["paths"]


def test_pages_render_without_javascript(hub: Hub, catalogue: dict, tmp_path: Path):
    word, packs = catalogue["word"], catalogue["packs"]
    page = hub.http.get("/", params={"q": word}).text
    assert "<script" not in page and all(p in page for p in packs.values())
    assert page.index(packs["id"]) < page.index(packs["desc"])
    pack_page = hub.http.get(f"/packs/{packs['node']}").text
    assert f"comfy node registry-install {packs['node']}" in pack_page and "Sharpen" in pack_page
    assert f"/simple/ {packs['node']}" in pack_page
    pub_page = hub.http.get(f"/publishers/{catalogue['publisher']}").text
    assert all(p in pub_page for p in packs.values())

    flagged = unique("flag-")
    pub, token = hub.new_publisher()
    hub.publish_dir(make_pack(tmp_path, flagged, "1.0.0", pub, extra_files={"x.py": "import os\nos.system('ls')\n"}), token)
    assert "os.system" in hub.http.get(f"/packs/{flagged}").text  # findings are shown to everyone, the publisher too


def test_moderation_pages_with_forms(hub: Hub, tmp_path: Path):
    browser = httpx.Client(base_url=hub.url)  # its own cookie jar, like a browser
    r = browser.get("/admin", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    pub, token = hub.new_publisher()
    name = unique("modq-")
    hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub, extra_files={"x.py": "import os\nos.system('ls')\n"}), token)
    login_csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text).group(1)
    bad = browser.post("/login", data={"token": "hth_nope", "next": "/admin", "csrf_token": login_csrf})
    assert bad.status_code == 401 and "not recognised" in bad.text
    admin_token = hub.admin_token()
    r = browser.post("/login", data={"token": admin_token, "next": "/admin", "csrf_token": login_csrf},
                     follow_redirects=False)
    assert r.status_code == 303 and "samesite=strict" in r.headers["set-cookie"].lower()
    queue = browser.get("/admin").text
    assert name in queue and "os.system" in queue
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', queue).group(1)
    # The cookie works for the web pages but never for the JSON API's writes.
    assert browser.post("/api/v1/admin/approve", json={"target": f"{name}@1.0.0"}).status_code == 401
    assert browser.post("/api/v1/admin/approve", params={"allow_cookie": "true"},
                        json={"target": f"{name}@1.0.0"}).status_code == 401
    r = browser.post("/admin/action", data={"target": f"{name}@1.0.0", "action": "approve", "reason": "fine",
                                            "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert hub.http.get(f"/nodes/{name}/install").json()["version"] == "1.0.0"
    page = browser.get("/admin").text
    assert f"/admin/review/{name}/1.0.0" not in page  # left the queue
    assert "version.approve" in page
    browser.cookies.set("hearth_token", token)
    assert browser.get("/admin").status_code == 403
