"""An author's whole path against a real registry: init, its own test, validate, pack, login, publish, visible."""

from __future__ import annotations

import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from hearth.registry.archive import file_digest
from hearth.registry.client import RegistryClient
from hearth.registry.config import Index, PackNotFound, source_for_pack
from tests.registry_server.helpers import Hub, unique


def test_init_validate_pack_login_publish_then_the_registry_serves_it(comfy, hub: Hub, tmp_path: Path,
                                                                     config_file: Path):
    publisher, token = hub.new_publisher()
    name = unique("nodes-")
    pack = tmp_path / name
    r = comfy("node", "init", pack, "--publisher", publisher)
    assert r.exit_code == 0, r.output

    r = comfy("node", "validate", pack)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("PASS") and "1 node(s)" in r.output

    out = tmp_path / "out.zip"
    r = comfy("node", "pack", pack, "--out", out)
    assert r.exit_code == 0, r.output
    sha, size = file_digest(out)
    assert r.output.splitlines() == [str(out), f"sha256 {sha}", f"size {size} bytes, 6 files"]
    names = zipfile.ZipFile(out).namelist()
    assert "pyproject.toml" in names and not any(n.startswith("tests/") for n in names)  # .comfyignore applies

    r = comfy("login", "--registry", hub.url, "--token", token)
    assert r.exit_code == 0, r.output
    assert f"as {publisher}" in r.output
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600

    # No --token and no --registry: both come from what login stored.
    r = comfy("node", "publish", pack)
    assert r.exit_code == 0, r.output
    assert f"published {publisher}/{name} 0.1.0 to {hub.url}" in r.output

    detail = hub.wait(name, "0.1.0")
    assert detail["status"] == "active", detail
    assert detail["sha256"] == sha  # the archive is reproducible: publish uploaded exactly what pack built
    assert hub.http.get(f"/api/v1/packs/{name}").json()["publisher"] == publisher

    # The client the install commands will use finds it through the priority lookup.
    with RegistryClient(hub.url) as client:
        found = source_for_pack(name, [Index(hub.url)], lambda reg, n: client.pack(n))
        assert not isinstance(found, PackNotFound) and found[1]["publisher"] == publisher
        assert client.pack(unique("absent-")) is None

    r = comfy("node", "publish", pack)  # the same version again
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "409" in r.output and "0.1.0" in r.output


def test_scaffolded_pack_passes_its_own_test(comfy, tmp_path: Path):
    pack = tmp_path / "my-nodes"
    assert comfy("node", "init", pack, "--publisher", "acme").exit_code == 0
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=pack,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    for rel in ("pyproject.toml", "__init__.py", "my_nodes/__init__.py", "my_nodes/nodes.py", ".comfyignore",
                "README.md"):
        assert (pack / rel).is_file(), rel


def test_init_never_overwrites(comfy, tmp_path: Path):
    pack = tmp_path / "p"
    pack.mkdir()
    (pack / "README.md").write_text("mine")
    r = comfy("node", "init", pack)
    assert r.exit_code == 2 and "README.md already exists" in r.output
    assert (pack / "README.md").read_text() == "mine" and not (pack / "pyproject.toml").exists()
