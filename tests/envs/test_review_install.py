"""`comfy install` cannot see a version that waits for review; once an admin approves it, it installs."""

from __future__ import annotations

from pathlib import Path

from tests.harness.packs import Packs, project_pack
from tests.registry_server.helpers import Hub, unique


def test_comfy_install_sees_a_reviewed_version_only_after_approval(hub: Hub, packs: Packs, comfy, home: Path):
    stranger, token = hub.new_publisher(trusted=False)
    name = unique("preview-")
    folder = project_pack(packs.work, name, "1.0.0", stranger, build_system=True)
    hub.publish_dir(folder, token)
    assert hub.wait(name, "1.0.0")["status"] == "review"

    r = comfy("install", name)
    assert r.exit_code == 2 and name in r.output, r.output
    assert "none of its versions can be installed" in r.output and "Traceback" not in r.output

    admin = {"Authorization": f"Bearer {hub.admin_token()}"}
    assert hub.http.post("/api/v1/admin/approve", json={"target": f"{name}@1.0.0"}, headers=admin).status_code == 200
    r = comfy("install", name)
    assert r.exit_code == 0, r.output
    assert name in comfy("list").output
