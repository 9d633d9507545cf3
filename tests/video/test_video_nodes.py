"""Video file nodes: animated WEBP/PNG, MP4 through LoadVideo/GetVideoComponents, WEBM, bad files, history and /view."""

from __future__ import annotations

import json
import os
import time
import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hearth_video import video_io
from hearth_video.video_nodes import NODES
from PIL import Image

from hearth.core.context import Folders

# The name Starlette's TestClient sends as the Host: allowed as --allow-host would allow it (only loopback
# names reach a server without a token).
TESTSERVER = ["testserver"]


@pytest.fixture
def folders(hearth_folders: Folders) -> Folders:
    """The input/output/temp folders of the test's Runtime, which nodes see outside execution too."""
    return hearth_folders


def call(name: str, **inputs: Any) -> Any:
    cls = NODES[name]
    return getattr(cls(), cls.FUNCTION)(**inputs)


def frames(count: int = 6, height: int = 24, width: int = 32) -> torch.Tensor:
    """Frames that differ a lot one from the next: a bright bar moving right over a gradient, [F, H, W, 3]."""
    out = torch.zeros(count, height, width, 3)
    out[..., 1] = torch.linspace(0, 1, height)[:, None]
    for i in range(count):
        left = i * width // count
        out[i, :, left:left + width // count, 0] = 1.0
    return out


def only_file(result: dict[str, Any], folder: Path) -> Path:
    (entry,) = result["ui"]["images"]
    assert entry["type"] == "output" and result["ui"]["animated"] == (True,)
    return folder / entry["subfolder"] / entry["filename"]


def durations(image: Image.Image) -> list[int]:
    """Each frame's display time in ms (WEBP sets it when the frame is loaded)."""
    found = []
    for index in range(image.n_frames):
        image.seek(index)
        image.load()
        found.append(image.info["duration"])
    return found


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".partial" in p.name]


def test_animated_webp_has_every_frame_and_its_duration(folders: Folders) -> None:
    clip = frames(6)
    result = call("SaveAnimatedWEBP", images=clip, fps=8.0, filename_prefix="anim/clip", lossless=True, quality=80,
                  method="fastest", prompt={"1": {"class_type": "X"}}, extra_pnginfo={"workflow": {"nodes": []}})
    path = only_file(result, folders.output)
    assert path.name == "clip_00001_.webp" and result["ui"]["images"][0]["subfolder"] == "anim"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not a private temporary one
    with Image.open(path) as image:
        assert image.format == "WEBP" and image.n_frames == 6
        shown = durations(image)
        image.seek(3)
        third = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255)
        exif = image.getexif()
    assert shown == [125] * 6  # 1000 / 8 fps
    assert (third - clip[3]).abs().max() < 1 / 255 + 1e-6  # lossless: the frame itself
    assert exif[0x0110].startswith("prompt:") and json.loads(exif[0x0110][7:]) == {"1": {"class_type": "X"}}
    assert exif[0x010F] == 'workflow:{"nodes": []}'
    again = call("SaveAnimatedWEBP", images=clip, fps=8.0, filename_prefix="anim/clip", lossless=False,
                 quality=50, method="default")
    assert only_file(again, folders.output).name == "clip_00002_.webp"  # the counter continues


def test_animated_png_has_every_frame_and_its_duration(folders: Folders) -> None:
    result = call("SaveAnimatedPNG", images=frames(5), fps=4.0, compress_level=1, filename_prefix="apng",
                  prompt={"1": {}})
    path = only_file(result, folders.output)
    with Image.open(path) as image:
        assert image.format == "PNG" and getattr(image, "is_animated", False) and image.n_frames == 5
        shown = durations(image)
    assert shown == [250] * 5
    assert b"comf" in path.read_bytes() and b'prompt\x00{"1": {}}' in path.read_bytes()


def test_mp4_round_trip_keeps_fps_and_frame_count(folders: Folders) -> None:
    clip = frames(9, 24, 33)  # an odd width: padded to 34 for 4:2:0
    (video,) = call("CreateVideo", images=clip, fps=12.0)
    assert video.get_frame_rate() == 12 and video.get_frame_count() == 9
    result = call("SaveVideo", video=video, filename_prefix="video/ComfyUI", format="auto", codec="auto",
                  prompt={"1": {"class_type": "CreateVideo"}})
    path = only_file(result, folders.output)
    assert path.name == "ComfyUI_00001_.mp4" and result["ui"]["images"][0]["subfolder"] == "video"
    target = folders.input / "clip.mp4"
    target.write_bytes(path.read_bytes())
    assert NODES["LoadVideo"].INPUT_TYPES()["required"]["file"][0] == ["clip.mp4"]
    assert NODES["LoadVideo"].VALIDATE_INPUTS("clip.mp4") is True
    (loaded,) = call("LoadVideo", file="clip.mp4")
    assert loaded.get_frame_rate() == 12 and loaded.get_frame_count() == 9 and loaded.get_dimensions() == (34, 24)
    images, audio, fps = call("GetVideoComponents", video=loaded)
    assert fps == 12.0 and audio is None
    assert images.shape == (9, 24, 34, 3)
    # Lossy but faithful: each frame is closest to its own source frame (the order and count are kept).
    for i in range(9):
        errors = [(images[i, :, :33] - clip[j]).abs().mean().item() for j in range(9)]
        assert errors.index(min(errors)) == i and errors[i] < 0.05
    with video_io._open(path) as container:
        assert json.loads(container.metadata["prompt"]) == {"1": {"class_type": "CreateVideo"}}
    # Saving a loaded MP4 copies its packets: the same frames again, not a second lossy encode.
    again = only_file(call("SaveVideo", video=loaded, filename_prefix="copy", prompt={"2": {}}), folders.output)
    copied = video_io.read_video(again)
    assert torch.equal(copied.images, images) and copied.frame_rate == 12
    with video_io._open(again) as container:
        assert json.loads(container.metadata["prompt"]) == {"2": {}}


def test_mp4_with_audio_keeps_the_sound(folders: Folders) -> None:
    rate = 16000
    wave = 0.5 * torch.sin(torch.arange(rate) * (2 * torch.pi * 440 / rate)).view(1, 1, -1).repeat(1, 2, 1)
    (video,) = call("CreateVideo", images=frames(8), fps=8.0, audio={"waveform": wave, "sample_rate": rate})
    path = only_file(call("SaveVideo", video=video, filename_prefix="talk", format="mp4", codec="h264"), folders.output)
    parts = video_io.read_video(path)
    assert parts.frame_rate == 8 and parts.images.shape[0] == 8
    assert parts.audio["sample_rate"] == rate and parts.audio["waveform"].shape[1] == 2
    assert abs(parts.audio["waveform"].shape[2] - rate) < rate * 0.1  # one second, give or take codec padding
    assert 0.3 < parts.audio["waveform"].abs().max() < 0.7


@pytest.mark.parametrize("codec", ["vp9", "av1"])
def test_webm_keeps_fps_and_frame_count(folders: Folders, codec: str) -> None:
    result = call("SaveWEBM", images=frames(7), codec=codec, fps=23.976, filename_prefix="web", crf=30.0)
    path = only_file(result, folders.output)
    assert path.suffix == ".webm"
    info = video_io.probe(path)
    assert info["frame_rate"] == Fraction(24000, 1001) and info["frame_count"] == 7
    assert info["container"].startswith("matroska")
    assert video_io.read_video(path).images.shape == (7, 24, 32, 3)


def test_a_corrupt_or_unsupported_file_names_itself(folders: Folders) -> None:
    good = video_io.write_video(folders.output / "good.mp4", frames(9), 8.0)
    (folders.input / "half.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    (folders.input / "notes.webm").write_text("this is not a video")
    for name in ("half.mp4", "notes.webm"):
        with pytest.raises(video_io.VideoFileError, match=rf"{name}: not a readable video file"):
            call("LoadVideo", file=name)
    with wave.open(str(folders.input / "voice.wav"), "wb") as sound:  # readable, but only audio
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * 800)
    with pytest.raises(video_io.VideoFileError, match=r"voice\.wav: holds no video stream"):
        video_io.VideoFromFile(folders.input / "voice.wav")
    assert "Invalid video file: gone.mp4" in NODES["LoadVideo"].VALIDATE_INPUTS("gone.mp4")


def test_nothing_is_half_written_when_saving_fails(folders: Folders, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("interrupted while encoding")

    with pytest.raises(RuntimeError, match="interrupted"):
        video_io.write_video(folders.output / "cut.mp4", frames(9), 8.0, progress=broken)
    assert not (folders.output / "cut.mp4").exists() and leftovers(folders.output) == []
    with pytest.raises(video_io.VideoFileError, match=r"cut\.webm: unknown codec 'h265'"):
        video_io.write_video(folders.output / "cut.webm", frames(3), 8.0, codec="h265")
    monkeypatch.setattr(video_io, "H264_ENCODERS", ("no-such-encoder",))
    with pytest.raises(video_io.VideoFileError, match="no working H.264 encoder"):
        call("SaveVideo", video=call("CreateVideo", images=frames(3), fps=8.0)[0], filename_prefix="x")
    assert [p.name for p in folders.output.rglob("*") if p.is_file()] == []


def test_saving_refuses_what_is_not_frames(folders: Folders) -> None:
    with pytest.raises(ValueError, match=r"SaveAnimatedWEBP: images must be IMAGE frames \[F, H, W, 3\]"):
        call("SaveAnimatedWEBP", images=torch.zeros(0, 8, 8, 3), fps=6.0, filename_prefix="x", lossless=True,
             quality=80, method="default")
    with pytest.raises(ValueError, match="SaveVideo: video must be a VIDEO"):
        call("SaveVideo", video=frames(2), filename_prefix="x")


def test_saved_video_shows_in_history_and_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mimetypes

    from starlette.testclient import TestClient

    from hearth.core.plugins import PluginManager
    from hearth.web.app import create_app
    from hearth.web.config import ServerConfig

    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 16, "batch_size": 5, "color": 0xFF8000}},
              "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 10.0}},
              "3": {"class_type": "SaveVideo", "inputs": {"video": ["2", 0], "filename_prefix": "video/run",
                                                          "format": "auto", "codec": "auto"}},
              "4": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["1", 0], "filename_prefix": "run",
                                                                 "fps": 10.0, "lossless": True, "quality": 80,
                                                                 "method": "fastest"}}}
    # As on a system without /etc/mime.types, which is where .webp goes unknown.
    monkeypatch.setattr(mimetypes, "guess_type", mimetypes.MimeTypes(filenames=()).guess_type)
    app = create_app(ServerConfig(allowed_hosts=TESTSERVER, data=tmp_path, serve_frontend=False), plugins=PluginManager().load(environ={}))
    with TestClient(app) as client:
        answer = client.post("/prompt", json={"prompt": prompt})
        assert answer.status_code == 200, answer.text
        prompt_id = answer.json()["prompt_id"]
        deadline = time.monotonic() + 60
        while prompt_id not in (history := client.get(f"/history/{prompt_id}").json()):
            assert time.monotonic() < deadline, "the prompt did not finish"
            time.sleep(0.1)
        entry = history[prompt_id]
        assert entry["status"]["status_str"] == "success", entry["status"]
        video = entry["outputs"]["3"]
        assert video["animated"] == [True]
        assert video["images"] == [{"filename": "run_00001_.mp4", "subfolder": "video", "type": "output"}]
        shown = client.get("/view", params={"filename": "run_00001_.mp4", "subfolder": "video", "type": "output"})
        assert shown.status_code == 200 and shown.headers["content-type"] == "video/mp4"
        saved = tmp_path / "video.mp4"
        saved.write_bytes(shown.content)
        assert video_io.probe(saved)["frame_count"] == 5 and video_io.probe(saved)["frame_rate"] == 10
        webp = entry["outputs"]["4"]["images"][0]
        shown = client.get("/view", params=webp)
        assert shown.status_code == 200 and shown.headers["content-type"] == "image/webp"
