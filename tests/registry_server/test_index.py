"""The simple index (PEP 503/691/592/658) and a real `uv pip install` of a pack and the pack it depends on."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.harness.packs import make_pack
from tests.registry_server.helpers import Hub, unique

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def test_simple_index_json_and_html(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    name = unique("Idx_Pack-")
    key = name.lower().replace("_", "-")
    hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token)
    hub.publish_dir(make_pack(tmp_path, name, "1.1.0-beta.2", pub), token)
    admin = {"Authorization": f"Bearer {hub.admin_token()}"}
    hub.http.post("/api/v1/admin/yank", json={"target": f"{name}@1.0.0", "reason": "bad build"}, headers=admin)

    assert key in [p["name"] for p in hub.http.get("/simple/", headers=JSON).json()["projects"]]
    r = hub.http.get(f"/simple/{name}/", headers=JSON, follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"].endswith(f"/simple/{key}/")
    r = hub.http.get(f"/simple/{key}/", headers=JSON)
    assert r.headers["content-type"].startswith("application/vnd.pypi.simple.v1+json")
    data = r.json()
    assert data["versions"] == ["1.0.0", "1.1.0b2"]
    files = {f["filename"]: f for f in data["files"]}
    old = files[f"{key.replace('-', '_')}-1.0.0-py3-none-any.whl"]
    assert old["yanked"] == "bad build" and old["requires-python"] == ">=3.9"
    wheel = httpx.get(old["url"]).content
    assert hashlib.sha256(wheel).hexdigest() == old["hashes"]["sha256"] and len(wheel) == old["size"]
    metadata = httpx.get(old["url"] + ".metadata").content
    assert hashlib.sha256(metadata).hexdigest() == old["core-metadata"]["sha256"]
    assert b"Requires-Python: >=3.9" in metadata

    html = hub.http.get(f"/simple/{key}/", headers={"Accept": "text/html"}).text
    assert f'#sha256={old["hashes"]["sha256"]}' in html and 'data-yanked="bad build"' in html
    assert 'data-requires-python="&gt;=3.9"' in html


def test_wheel_contents(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    name = unique("wheel-")
    detail = hub.publish_dir(make_pack(tmp_path, name, "2.0.0", pub, dependencies=["tqdm>=4"]), token)
    path = tmp_path / "w.whl"
    path.write_bytes(httpx.get(detail["wheel"]).content)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        pkg = name.replace("-", "_")
        assert f"{pkg}/__init__.py" in names and f"{pkg}/pyproject.toml" in names
        dist = f"{pkg}-2.0.0.dist-info"
        assert "Requires-Dist: tqdm>=4" in zf.read(f"{dist}/METADATA").decode()
        assert f"{name} = {pkg}" in zf.read(f"{dist}/entry_points.txt").decode()
        assert zf.read(f"{dist}/RECORD")


def _uv() -> str:
    exe = Path(sys.executable).parent / "uv"
    if exe.exists():
        return str(exe)
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        pytest.skip("uv is not installed (pip install uv)")


@pytest.mark.slow
def test_uv_installs_pack_and_its_pack_dependencies(hub: Hub, tmp_path: Path):
    if hub.backend != "sqlite":
        pytest.skip("the uv round trip runs once, on SQLite; the index itself is tested on every backend")
    uv = _uv()
    pub, token = hub.new_publisher()
    base, top = unique("base-"), unique("top-")
    hub.publish_dir(make_pack(tmp_path, base, "1.0.0", pub), token)
    hub.publish_dir(make_pack(tmp_path, base, "1.1.0", pub), token)
    hub.publish_dir(make_pack(tmp_path, top, "0.1.0", pub, dependencies=[f"{base}>=1.0"]), token)
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1", "UV_OFFLINE": "0",
           "UV_PYTHON_DOWNLOADS": "never"}
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    r = subprocess.run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), "--index-url",
                        f"{hub.url}/simple/", top], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          f"import {top.replace('-', '_')} as t, {base.replace('-', '_')} as b; "
                          "print(sorted(t.NODE_CLASS_MAPPINGS), sorted(b.NODE_CLASS_MAPPINGS))"],
                         capture_output=True, text=True, check=True).stdout
    assert "Node" in out
    freeze = subprocess.run([uv, "pip", "freeze", "--python", str(venv / "bin" / "python")], capture_output=True,
                            text=True, env=env).stdout
    assert f"{base}==1.1.0" in freeze and f"{top}==0.1.0" in freeze and "torch" not in freeze


@pytest.mark.slow
def test_uv_installs_from_a_private_registry_with_a_read_token(private_hub, tmp_path: Path):
    uv = _uv()
    hub = private_hub
    pub, token = hub.new_publisher()
    name = unique("private-")
    read = hub.token(pub, "read")
    hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token, wait=False)
    hub.wait(name, "1.0.0", headers={"Authorization": f"Bearer {read}"})
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1",
           "UV_PYTHON_DOWNLOADS": "never"}
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    host = hub.url.removeprefix("http://")
    base = [uv, "pip", "install", "--python", str(venv / "bin" / "python")]
    denied = subprocess.run([*base, "--index-url", f"{hub.url}/simple/", name], capture_output=True, text=True,
                            env=env, timeout=120)
    assert denied.returncode != 0
    r = subprocess.run([*base, "--index-url", f"http://__token__:{read}@{host}/simple/", name],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
