"""SaveImage writes each PNG under a temporary name: a writer that dies mid-file leaves nothing under the final name."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from hearth.core.context import Folders, atomic_path, remove_dead_partials
from tests.builtin_nodes.conftest import call, gradient

REPO = Path(__file__).resolve().parents[2]

# A child that runs SaveImage with Pillow's writer stalled halfway through the PNG, then waits to be killed.
KILLED_MID_WRITE = textwrap.dedent("""
    import io, sys, time
    import torch
    from PIL import Image
    from hearth.core.builtin_nodes.image_io import SaveImage

    real_save = Image.Image.save

    def stalled_save(self, fp, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(self, buffer, *args, **kwargs)
        with open(fp, "wb") as handle:
            handle.write(buffer.getvalue()[: buffer.tell() // 2])
            handle.flush()
        print("WRITING", flush=True)
        time.sleep(120)

    Image.Image.save = stalled_save
    SaveImage().save_images(torch.rand(1, 8, 8, 3), "killed")
""")


def test_kill_9_mid_write_leaves_no_file_under_the_final_name(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", KILLED_MID_WRITE], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    try:
        line = child.stdout.readline()
        assert line.strip() == b"WRITING", child.stderr.read().decode()
    finally:
        child.kill()
        child.wait()
    output = tmp_path / "output"
    assert not (output / "killed_00001_.png").exists()
    # What the killed writer left is hidden, half a PNG, and not counted as an output by the next save.
    leftovers = [p.name for p in output.iterdir()]
    assert leftovers == [f".killed_00001_.{child.pid}-{leftovers[0].split('-')[-1]}"]
    assert leftovers[0].endswith(".partial.png") and len(leftovers[0].split("-")[-1]) == len("0123abcd.partial.png")
    assert remove_dead_partials(output) == [output / leftovers[0]] and list(output.iterdir()) == []


def test_a_writer_failing_midway_leaves_nothing(folders: Folders, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"\x89PNG\r\n\x1a\n half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        call("SaveImage", images=gradient(), filename_prefix="full")
    assert list(folders.output.iterdir()) == []


def test_saves_after_a_crash_continue_the_counter_and_skip_the_leftover(folders: Folders) -> None:
    (folders.output / ".run_00001_.0123456789ab.partial.png").write_bytes(b"\x89PNG half")
    saved = call("SaveImage", images=gradient(batch=2), filename_prefix="run")["ui"]["images"]
    assert [s["filename"] for s in saved] == ["run_00001_.png", "run_00002_.png"]
    with Image.open(folders.output / "run_00002_.png") as image:
        assert image.size == (12, 8)


def test_atomic_path_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        temp.write_bytes(b"new but broken")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    with atomic_path(target) as temp:
        assert temp.parent == tmp_path and temp.suffix == ".bin" and temp.name.startswith(".a.")
        temp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_save_image_stops_between_images_when_interrupted(folders: Folders) -> None:
    import threading

    from hearth.core import context
    from hearth.core.context import ExecutionContext, InterruptProcessing

    stop = threading.Event()
    stop.set()
    token = context.enter(ExecutionContext("p", "9", "9", "SaveImage", folders, lambda *_: None, stop))
    try:
        with pytest.raises(InterruptProcessing):
            call("SaveImage", images=gradient(batch=3), filename_prefix="stopped")
    finally:
        context.leave(token)
    assert list(folders.output.iterdir()) == []
