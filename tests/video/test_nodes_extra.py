"""Video Slice and LTXVPreprocess against ComfyUI's definitions (comfy_extras/nodes_video.py, nodes_lt.py)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch
from hearth_video.nodes_extra import NODES, LTXVPreprocess, VideoSlice
from hearth_video.video_io import VideoComponents, VideoFromComponents, VideoFromFile, write_video
from hearth_video.video_nodes import GetVideoComponents

from hearth.core.executor import Executor
from hearth.core.node_registry import NodeRegistry


def clip(frames: int = 10, fps: int = 5, audio: bool = True) -> VideoFromComponents:
    """Frame i is filled with i / 100, so a slice shows which frames it kept; audio sample j holds j."""
    images = torch.arange(frames, dtype=torch.float32).div(100).reshape(frames, 1, 1, 1).expand(frames, 4, 6, 3)
    sound = {"waveform": torch.arange(frames * 80, dtype=torch.float32).reshape(1, 1, -1) / 1e4,
             "sample_rate": fps * 80} if audio else None
    return VideoFromComponents(VideoComponents(images=images.contiguous(), frame_rate=Fraction(fps), audio=sound))


def kept(video: Any) -> list[int]:
    return [round(v * 100) for v in video.get_components().images[:, 0, 0, 0].tolist()]


def test_slice_keeps_the_frames_whose_time_is_in_the_window() -> None:
    # 10 frames at 5 fps: frame i at i / 5 s. The window 0.4 s .. 1.2 s holds frames 2, 3, 4, 5.
    (out,) = VideoSlice().execute(clip(), 0.4, 0.8, False)
    assert kept(out) == [2, 3, 4, 5]
    parts = out.get_components()
    assert parts.frame_rate == 5
    # Audio: 400 samples/s, samples 160 .. 480 (0.4 s .. 1.2 s).
    assert parts.audio["waveform"].shape[-1] == 320
    assert parts.audio["waveform"][0, 0, 0].item() == pytest.approx(160 / 1e4)


def test_slice_negative_start_counts_from_the_end_and_zero_duration_keeps_the_rest() -> None:
    assert kept(VideoSlice().execute(clip(), -0.6, 0.0, False)[0]) == [7, 8, 9]
    assert kept(VideoSlice().execute(clip(), 1.0, 0.0, False)[0]) == [5, 6, 7, 8, 9]
    assert kept(VideoSlice().execute(clip(audio=False), -100.0, 0.4, False)[0]) == [0, 1]  # clamped to the start


def test_slice_strict_duration_refuses_a_short_clip() -> None:
    assert kept(VideoSlice().execute(clip(), 1.6, 5.0, False)[0]) == [8, 9]  # not strict: what there is
    with pytest.raises(ValueError, match="Failed to slice video:\nSource duration: 2.0\nStart time: 1.6"):
        VideoSlice().execute(clip(), 1.6, 5.0, True)
    with pytest.raises(ValueError, match="Failed to slice video"):
        VideoSlice().execute(clip(), 3.0, 0.0, False)  # starts after the end: nothing to keep
    with pytest.raises(ValueError, match="Video Slice: video must be a VIDEO"):
        VideoSlice().execute(torch.zeros(2, 4, 4, 3), 0.0, 0.0, False)


def test_slice_reads_a_video_file(tmp_path: Path) -> None:
    pytest.importorskip("av")
    images = clip(audio=False).get_components().images[:, :1, :1].expand(10, 16, 16, 3).contiguous()
    path = write_video(tmp_path / "clip.mp4", images, 5.0)
    (out,) = VideoSlice().execute(VideoFromFile(path), 0.4, 0.8, True)
    assert out.get_frame_count() == 4 and out.get_dimensions() == (16, 16)


def test_slice_inputs_match_comfyui() -> None:
    spec = VideoSlice.INPUT_TYPES()["required"]
    assert list(spec) == ["video", "start_time", "duration", "strict_duration"]
    assert spec["start_time"][1]["min"] == -1e5 and spec["duration"][1]["min"] == 0.0
    assert "Video Slice" in NODES and VideoSlice.DISPLAY_NAME == "Trim Video"


def ramp(height: int, width: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height)[:, None, None].expand(height, width, 1)
    xs = torch.linspace(0, 1, width)[None, :, None].expand(height, width, 1)
    base = torch.cat([ys, xs, ys * xs], dim=-1)[None].repeat(batch, 1, 1, 1)
    return (base + 0.1 * torch.rand(batch, height, width, 3, generator=gen)).clamp(0, 1)


def test_preprocess_without_compression_returns_the_frames_untouched() -> None:
    image = ramp(7, 9)
    assert LTXVPreprocess().execute(image, 0)[0] is image


def test_preprocess_round_trips_each_frame_through_h264() -> None:
    pytest.importorskip("av")
    image = ramp(17, 23, batch=2)
    (light,) = LTXVPreprocess().execute(image, 5)
    (heavy,) = LTXVPreprocess().execute(image, 60)
    # Odd sides lose their last row and column (4:2:0 needs even sizes); values stay in 0..1 at 1/255 steps.
    assert light.shape == heavy.shape == (2, 16, 22, 3)
    assert light.min() >= 0 and light.max() <= 1
    assert torch.equal((light * 255).round() / 255, light)
    reference = image[:, :16, :22]
    assert 0 < (light - reference).abs().mean() < (heavy - reference).abs().mean() < 0.2
    assert torch.equal(LTXVPreprocess().execute(image, 5)[0], light)  # the encoder is deterministic
    assert not torch.equal(light[0], light[1])  # each frame is encoded on its own


def test_preprocess_names_bad_inputs() -> None:
    pytest.importorskip("av")
    with pytest.raises(ValueError, match="LTXVPreprocess: image of 1x1 pixels is too small"):
        LTXVPreprocess().execute(torch.zeros(1, 1, 1, 3), 35)
    with pytest.raises(ValueError, match="LTXVPreprocess: image must be an IMAGE"):
        LTXVPreprocess().execute(torch.zeros(4, 4, 3), 35)


class Source:
    RETURN_TYPES = ("VIDEO",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def make(self) -> tuple[Any]:
        return (clip(),)


class Capture:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("IMAGE",)}}

    def capture(self, value: Any) -> dict[str, Any]:
        return {"ui": {"value": [value]}}


def test_a_workflow_slices_then_preprocesses_through_the_executor() -> None:
    pytest.importorskip("av")
    registry = NodeRegistry.from_classes(NODES | {"Source": Source, "Capture": Capture,
                                                  "GetVideoComponents": GetVideoComponents})
    prompt = {
        "1": {"class_type": "Source", "inputs": {}},
        "2": {"class_type": "Video Slice", "inputs": {"video": ["1", 0], "start_time": 0.2, "duration": 0.4,
                                                      "strict_duration": True}},
        "3": {"class_type": "GetVideoComponents", "inputs": {"video": ["2", 0]}},
        "4": {"class_type": "LTXVPreprocess", "inputs": {"image": ["3", 0], "img_compression": 35}},
        "5": {"class_type": "Capture", "inputs": {"value": ["4", 0]}},
    }
    result = Executor(registry).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    (out,) = result.outputs["5"]["value"]
    assert out.shape == (2, 4, 6, 3)  # frames 1 and 2 of the clip, each through the encoder
