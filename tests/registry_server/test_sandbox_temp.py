"""`kill -9` during verification: the sandbox's temporary folders are under the data folder, and the next start
removes what the dead process left there."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hearth.registry.archive import build_archive
from tests.harness.packs import make_pack
from tests.registry_server.helpers import unique

SLOW_IMPORT = """import time
time.sleep(60)  # still importing when the server is killed
NODE_CLASS_MAPPINGS = {}
"""


def _sandbox_folders(tmp_dir: Path) -> list[Path]:
    return [p for p in tmp_dir.rglob("hearth-sandbox-*") if p.is_dir()] if tmp_dir.is_dir() else []


@pytest.mark.parametrize("kind", ["postgres", "s3"])
def test_sandbox_folders_of_a_killed_server_are_removed_at_start(make_server, tmp_path: Path, kind: str):
    server, hub = make_server(kind)
    pub, token = hub.new_publisher()
    name = unique("slow-")
    folder = make_pack(tmp_path, name, "1.0.0", pub)
    (folder / "__init__.py").write_text(SLOW_IMPORT)
    arc = build_archive(folder, tmp_path / "slow.zip")
    r = hub.reserve(pub, token, name, "1.0.0")
    assert r.status_code == 201, r.text
    assert hub.upload(r.json()["signedUrl"], arc.path.read_bytes()).status_code == 200

    tmp_dir = hub.settings.tmp_dir
    deadline = time.monotonic() + 20
    while not _sandbox_folders(tmp_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _sandbox_folders(tmp_dir)
    assert left, f"no hearth-sandbox-* folder appeared under {tmp_dir} while the pack was being imported"
    dead_pid = server.proc.pid
    server.kill()
    assert all(p.exists() for p in left)  # kill -9: nothing cleaned up

    server.start()  # same data folder: the start removes the dead process's folders
    assert not any(p.exists() for p in left)
    assert not [p for p in tmp_dir.iterdir() if p.name.split("-")[1:2] == [str(dead_pid)]]
