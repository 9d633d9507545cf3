"""The unmodified comfy-cli from PyPI publishes to, installs from and lists our registry (ENVIRONMENT=dev)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness.packs import make_pack
from tests.registry_server.conftest import settings_for
from tests.registry_server.helpers import Hub, unique
from tests.registry_server.servers import RegistryProcess

COMFY_CLI = "comfy-cli==1.23.0"  # the version the compatibility notes were taken from


@pytest.fixture(scope="session")
def comfy_cli() -> str:
    """comfy-cli in its own venv (its `comfy` command clashes with ours), reused between runs."""
    venv = Path(tempfile.gettempdir()) / f"hearth-{COMFY_CLI.replace('==', '-')}-venv"
    exe = venv / "bin" / "comfy"
    if not exe.exists():
        uv = Path(sys.executable).parent / "uv"
        try:
            if uv.exists():  # several times faster than venv + pip, which matters in a fresh CI run
                subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                               capture_output=True, timeout=120)
                subprocess.run([str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), COMFY_CLI],
                               check=True, capture_output=True, timeout=600)
            else:
                subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True,
                               timeout=120)
                subprocess.run([str(venv / "bin" / "pip"), "install", "-q", COMFY_CLI], check=True,
                               capture_output=True, timeout=600)
        except (subprocess.SubprocessError, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            pytest.skip(f"could not install {COMFY_CLI} from PyPI: {exc} {detail[-300:]!r}")
    return str(exe)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_comfy_cli_publish_install_list(comfy_cli: str, tmp_path: Path):
    if not _port_free(8080):
        pytest.skip("comfy-cli only talks to localhost:8080, and that port is in use here")
    server = RegistryProcess(settings_for(tmp_path / "data"))
    server.port, server.url = 8080, "http://127.0.0.1:8080"
    server.start()
    hub = Hub(server.url, server.settings)
    try:
        pub, token = hub.new_publisher(trusted=False)  # the default policy holds its versions for review
        name = unique("cli-pack-")
        pack = make_pack(tmp_path, name, "1.0.0", pub, git=True, extra_files={".comfyignore": "notes.txt\n",
                                                                               "notes.txt": "private"})
        env = {**os.environ, "ENVIRONMENT": "dev", "HOME": str(tmp_path / "home")}

        def comfy(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
            r = subprocess.run([comfy_cli, "--skip-prompt", *args], env=env, cwd=cwd, capture_output=True, text=True,
                               timeout=120)
            assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
            return r

        comfy("tracking", "disable")
        out = comfy("node", "publish", "--token", token, cwd=pack).stdout
        assert "Upload successful" in out
        detail = hub.wait(name, "1.0.0")
        assert detail["status"] == "review" and detail["node_classes"]

        workspace = tmp_path / "ComfyUI"
        (workspace / "custom_nodes").mkdir(parents=True)
        installed = workspace / "custom_nodes" / name
        # Accepted, then waiting: comfy-cli cannot install it until an admin approves.
        subprocess.run([comfy_cli, "--skip-prompt", "--workspace", str(workspace), "node", "registry-install", name],
                       env=env, capture_output=True, text=True, timeout=120)
        assert not (installed / "__init__.py").exists()
        admin = {"Authorization": f"Bearer {hub.admin_token()}"}
        assert hub.http.post("/api/v1/admin/approve", json={"target": f"{name}@1.0.0"},
                             headers=admin).status_code == 200
        assert hub.wait(name, "1.0.0")["status"] == "active"
        comfy("--workspace", str(workspace), "node", "registry-install", name)
        assert (installed / "__init__.py").exists() and (installed / "pyproject.toml").exists()
        assert not (installed / "notes.txt").exists()  # .comfyignore honoured by comfy-cli's zip

        listing = comfy("node", "registry-list").stdout
        assert name[:8] in listing

        # A second publish of the same version is refused with our 409 message, which comfy-cli shows.
        r = subprocess.run([comfy_cli, "--skip-prompt", "node", "publish", "--token", token], env=env, cwd=pack,
                           capture_output=True, text=True, timeout=120)
        assert "409" in r.stdout + r.stderr and "already published" in r.stdout + r.stderr
    finally:
        hub.close()
        server.stop()
