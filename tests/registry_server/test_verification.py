"""Verification: pending → active or flagged with readable findings; flagged needs an override; moderation."""

from __future__ import annotations

from pathlib import Path

from tests.harness.packs import make_pack
from tests.registry_server.helpers import Hub, unique

SHELL_OUT = "import os\n\ndef cleanup():\n    os.system('rm -rf /tmp/cache')\n"


def test_suspicious_pack_is_flagged_with_findings(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    name = unique("sus-")
    detail = hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub, extra_files={"tools.py": SHELL_OUT}), token)
    assert detail["status"] == "flagged", detail
    finding = next(f for f in detail["findings"] if f["path"] == "tools.py")
    assert finding["line"] == 4 and "os.system" in finding["snippet"] and finding["message"]
    assert detail["verifier"]

    # Not installable without the explicit override, and absent from the simple index.
    r = hub.http.get(f"/nodes/{name}/install", params={"version": "1.0.0"})
    assert r.status_code == 409 and "allow_flagged" in r.json()["message"]
    assert hub.http.get(f"/nodes/{name}/install").status_code == 404
    r = hub.http.get(f"/nodes/{name}/install", params={"version": "1.0.0", "allow_flagged": "true"})
    assert r.status_code == 200
    assert hub.http.get(f"/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
                        ).json()["files"] == []

    # The moderation queue shows it; approving makes it the latest.
    admin = {"Authorization": f"Bearer {hub.admin_token()}"}
    queue = hub.http.get("/api/v1/admin/queue", headers=admin).json()
    assert any(q["pack"] == name and q["findings"] for q in queue)
    assert hub.http.post("/api/v1/admin/approve", json={"target": f"{name}@1.0.0", "reason": "ok: cleanup only"},
                         headers=admin).status_code == 200
    assert hub.http.get(f"/nodes/{name}/install").json()["version"] == "1.0.0"
    audit = hub.http.get("/api/v1/admin/audit", params={"target": name}, headers=admin).json()
    assert [a["action"] for a in audit][:3] == ["version.approve", "version.verify", "version.upload"]


def test_ban_and_unban(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    name = unique("ban-")
    hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token)
    hub.publish_dir(make_pack(tmp_path, name, "1.1.0", pub), token)
    admin = {"Authorization": f"Bearer {hub.admin_token()}"}
    hub.http.post("/api/v1/admin/ban", json={"target": f"{name}@1.1.0", "reason": "malware"}, headers=admin)
    assert hub.http.get(f"/nodes/{name}/install").json()["version"] == "1.0.0"
    assert hub.http.get(f"/nodes/{name}/install", params={"version": "1.1.0"}).status_code == 404
    hub.http.post("/api/v1/admin/ban", json={"target": name}, headers=admin)
    assert hub.http.get(f"/nodes/{name}").status_code == 404
    hub.http.post("/api/v1/admin/unban", json={"target": name}, headers=admin)
    hub.http.post("/api/v1/admin/unban", json={"target": f"{name}@1.1.0"}, headers=admin)
    assert hub.http.get(f"/nodes/{name}/install").json()["version"] == "1.1.0"


def test_admin_api_needs_admin_token(hub: Hub):
    pub, token = hub.new_publisher()
    assert hub.http.get("/api/v1/admin/queue").status_code == 401
    r = hub.http.get("/api/v1/admin/queue", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    r = hub.http.post("/api/v1/admin/frobnicate", json={"target": "x"},
                      headers={"Authorization": f"Bearer {hub.admin_token()}"})
    assert r.status_code == 404 and "approve" in r.json()["message"]


def test_suppressed_findings_do_not_flag_later_versions(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    name = unique("supp-")
    first = hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub, extra_files={"tools.py": SHELL_OUT}), token)
    assert first["status"] == "flagged"
    finding = next(f for f in first["findings"] if f["path"] == "tools.py")
    admin = {"Authorization": f"Bearer {hub.admin_token()}"}
    r = hub.http.post("/api/v1/admin/suppress", json={"pack": name, "rule": "archive.path_traversal",
                                                      "reason": "no"}, headers=admin)
    assert r.status_code == 422 and "cannot be suppressed" in r.json()["message"]
    r = hub.http.post("/api/v1/admin/suppress", json={"pack": name, "rule": finding["rule"], "path": "tools.py",
                                                      "reason": "cache cleanup, reviewed"}, headers=admin)
    assert r.status_code == 200, r.text
    second = hub.publish_dir(make_pack(tmp_path / "b", name, "1.0.1", pub, extra_files={"tools.py": SHELL_OUT}),
                             token)
    assert second["status"] == "active", second["findings"]
    # The version flagged before the ruling can be verified again instead of approved by hand.
    r = hub.http.post("/api/v1/admin/reverify", json={"target": f"{name}@1.0.1"}, headers=admin)
    assert r.status_code == 409 and "only flagged" in r.json()["message"]
    assert hub.http.post("/api/v1/admin/reverify", json={"target": f"{name}@1.0.0"},
                         headers=admin).status_code == 200
    assert hub.wait(name, "1.0.0")["status"] == "active"
    assert all(f["rule"] != finding["rule"] or f["path"] != "tools.py" for f in second["findings"])
    audit = hub.http.get("/api/v1/admin/audit", params={"action": "finding.suppress", "target": name},
                         headers=admin).json()
    assert audit[0]["detail"]["reason"] == "cache cleanup, reviewed"
    shown = hub.http.get(f"/api/v1/packs/{name}").json()["suppressions"]
    assert [(x["rule"], x["path"], x["reason"]) for x in shown] == [(finding["rule"], "tools.py",
                                                                    "cache cleanup, reviewed")]
