"""`comfy serve` removes, as it starts, what savers killed mid-write left in the output and temp folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hearth_server import HearthServer


def test_start_removes_partials_of_dead_writers_and_keeps_live_ones(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (data / "output" / "sub").mkdir(parents=True)
    (data / "temp").mkdir(parents=True)
    left = [data / "output" / f".ComfyUI_00001_.{dead.pid}-0123abcd.partial.png",
            data / "output" / "sub" / f".clip_00001_.{dead.pid}-89abcdef.partial.webp",
            data / "temp" / f".ComfyUI_temp_abcde_00001_.{dead.pid}-00ff00ff.partial.png"]
    # This test's own process is alive: it could be a `comfy run` saving into the same folder right now.
    live = data / "output" / f".ComfyUI_00002_.{os.getpid()}-0123abcd.partial.png"
    kept = [data / "output" / "ComfyUI_00003_.png", data / "output" / ".hidden-by-the-user.png"]
    for path in (*left, live, *kept):
        path.write_bytes(b"\x89PNG")
    server = HearthServer(data).start()
    try:
        assert [p for p in left if p.exists()] == []
        assert live.exists() and all(p.exists() for p in kept)
        assert f"{left[0]}, left by a save that was killed mid-write" in server.output()
    finally:
        server.stop()
