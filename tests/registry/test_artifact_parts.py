"""Interrupted downloads in the artifact cache: a kill -9 mid-download leaves a .part that the next fetch removes.

The download server is a real HTTP server on loopback that can stall halfway through the file; the killed fetch
runs in a child process, as `comfy install` would.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.registry.artifacts import _cached_path, fetch, remove_dead_parts
from hearth.registry.lock import Artifact, Lock, LockedPackage
from hearth.registry.sources import Sources

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = os.urandom(4 << 20)  # the client writes in 1 MiB blocks
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Stalling(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD; while ``stall`` is set it sends half, then holds the connection open."""

    stall = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if self.stall.is_set():
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            time.sleep(30)
            return
        self.wfile.write(PAYLOAD)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/files/tiny_pack-1.0.0-py3-none-any.whl"
    server.shutdown()
    server.server_close()
    Stalling.stall.clear()


def lock_for(url: str) -> Lock:
    return Lock([LockedPackage("tiny-pack", "1.0.0", Artifact("tiny_pack-1.0.0-py3-none-any.whl", url, SHA))])


CHILD = textwrap.dedent("""
    import sys
    from hearth.registry.artifacts import fetch
    from hearth.registry.lock import Artifact, Lock, LockedPackage
    from hearth.registry.sources import Sources
    url, sha = sys.argv[1], sys.argv[2]
    fetch(Lock([LockedPackage("tiny-pack", "1.0.0", Artifact("tiny_pack-1.0.0-py3-none-any.whl", url, sha))]),
          Sources(pypi=None))
""")


def test_a_download_killed_midway_is_removed_by_the_next_fetch_and_not_reused(
        url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    cache = home / "cache" / "artifacts" / SHA
    Stalling.stall.set()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HEARTH_HOME": str(home)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, SHA], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size >= 1 << 20 for p in cache.glob(".*.part")):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never wrote a block"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    (left,) = cache.glob(".*.part")
    assert str(child.pid) in left.name

    Stalling.stall.clear()
    paths = fetch(lock_for(url), Sources(pypi=None))
    assert paths["tiny-pack"].read_bytes() == PAYLOAD
    assert not left.exists()
    assert sorted(p.name for p in cache.iterdir()) == ["tiny_pack-1.0.0-py3-none-any.whl"]


def test_parts_of_live_processes_are_kept(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    (root / "ab").mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        live = root / "ab" / f".x.whl.{sleeper.pid}-0123abcd.part"
        mine = root / "ab" / f".x.whl.{os.getpid()}-89abcdef.part"
        gone = root / "ab" / f".x.whl.{dead.pid}-00000000.part"
        old_style = root / "ab" / f".x.whl.{dead.pid}.part"
        nameless = root / "ab" / ".x.whl.part"
        for part in (live, mine, gone, old_style, nameless):
            part.write_bytes(b"half")
        assert sorted(remove_dead_parts(root)) == sorted([gone, old_style, nameless])
        assert live.exists() and mine.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_hash_mismatch_leaves_no_part(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "home"))
    bad = Lock([LockedPackage("tiny-pack", "1.0.0", Artifact("tiny_pack-1.0.0-py3-none-any.whl", url, "0" * 64))])
    with pytest.raises(Exception, match="hash mismatch"):
        fetch(bad, Sources(pypi=None))
    assert list(_cached_path(bad.packages[0]).parent.iterdir()) == []
