"""Model-free nodes of ComfyUI that need PyAV, with ComfyUI's names and inputs: Video Slice (comfy_extras/
nodes_video.py, shown as "Trim Video") and LTXVPreprocess (comfy_extras/nodes_lt.py).

Video Slice keeps the part of a VIDEO between ``start_time`` and ``start_time + duration`` seconds (a negative start
counts from the end, a duration of 0 keeps the rest), frames and audio alike; with ``strict_duration`` a clip shorter
than asked is an error, as in ComfyUI. Hearth decodes the frames and returns a clip in memory where ComfyUI keeps a
lazily trimmed file; which frames and samples are kept is the same: those whose time ``i / fps`` falls in the window.

LTXVPreprocess passes each frame through one H.264 encode and decode (libx264 at the given CRF, preset veryfast,
yuv420p), so an LTXV model sees the compression artefacts it was trained on. It needs no LTXV model.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any


def _check_image(image: Any, node: str) -> None:
    if getattr(image, "ndim", None) != 4:
        shape = tuple(image.shape) if hasattr(image, "shape") else type(image).__name__
        raise ValueError(f"{node}: image must be an IMAGE [batch, height, width, channels], got {shape}")


class VideoSlice:
    DISPLAY_NAME = "Trim Video"
    CATEGORY = "video"
    RETURN_TYPES = ("VIDEO",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "video": ("VIDEO",),
            "start_time": ("FLOAT", {"default": 0.0, "min": -1e5, "max": 1e5, "step": 0.001,
                                     "tooltip": "Start time in seconds"}),
            "duration": ("FLOAT", {"default": 0.0, "min": 0.0, "step": 0.001,
                                   "tooltip": "Duration in seconds, or 0 for unlimited duration"}),
            "strict_duration": ("BOOLEAN", {"default": False, "tooltip": "If True, when the specified duration is "
                                                                         "not possible, an error will be raised."}),
        }}

    def execute(self, video: Any, start_time: float, duration: float, strict_duration: bool) -> tuple[Any]:
        from .video_io import VideoComponents, VideoFromComponents

        if not hasattr(video, "get_components"):
            raise ValueError(f"Video Slice: video must be a VIDEO (LoadVideo, CreateVideo), got {type(video).__name__}")
        parts = video.get_components()
        rate = Fraction(parts.frame_rate)
        total = parts.images.shape[0]
        source = total / rate
        # Exact arithmetic on the window, the seconds taken as the decimals the widget shows (0.4 is 2/5, not the
        # binary float just above it): a frame at i / fps is in it when start <= i / fps < end.
        start = Fraction(repr(float(start_time)))
        if start < 0:
            start = max(source + start, Fraction(0))
        length = Fraction(repr(float(duration)))
        end = start + length if length > 0 else source
        first = max(0, -(-start * rate // 1))  # the first frame index whose time is >= start
        stop = min(total, -(-end * rate // 1))  # frames before the one at or after the end
        kept = max(0, int(stop) - int(first))
        if kept == 0 or (strict_duration and Fraction(kept) / rate < length):
            raise ValueError(f"Failed to slice video:\nSource duration: {float(source)}\nStart time: {start_time}\n"
                             f"Target duration: {duration}")
        audio = parts.audio
        if audio is not None:
            sample_rate = int(audio["sample_rate"])
            a = int(start * sample_rate)
            b = audio["waveform"].shape[-1] if length <= 0 else int(end * sample_rate)
            audio = {"waveform": audio["waveform"][..., a:b], "sample_rate": sample_rate}
        images = parts.images[int(first):int(first) + kept]
        return (VideoFromComponents(VideoComponents(images=images, frame_rate=parts.frame_rate, audio=audio)),)


def h264_round_trip(frame: Any, crf: int) -> Any:
    """One ``[H, W, 3]`` frame through libx264 (CRF ``crf``, preset veryfast, yuv420p) and back, as ComfyUI's
    LTXV preprocessing does: odd sides lose their last row/column (4:2:0 needs even sizes), values go to bytes by
    truncation (``* 255`` then ``byte()``), and come back divided by 255."""
    import av
    import torch

    height, width = (frame.shape[0] // 2) * 2, (frame.shape[1] // 2) * 2
    if height == 0 or width == 0:
        raise ValueError(f"LTXVPreprocess: image of {frame.shape[1]}x{frame.shape[0]} pixels is too small to "
                         "encode; it needs at least 2x2")
    pixels = (frame[:height, :width] * 255.0).byte().cpu().numpy()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"crf": str(crf), "preset": "veryfast"})
        stream.height, stream.width = height, width
        picture = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
        container.mux(stream.encode(picture))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        video = next(s for s in container.streams if s.type == "video")
        decoded = next(container.decode(video)).to_ndarray(format="rgb24")
    return torch.tensor(decoded, dtype=frame.dtype, device=frame.device) / 255.0


class LTXVPreprocess:
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("output_image",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "img_compression": ("INT", {"default": 35, "min": 0, "max": 100,
                                        "tooltip": "Amount of compression to apply on image."}),
        }}

    def execute(self, image: Any, img_compression: int) -> tuple[Any]:
        _check_image(image, "LTXVPreprocess")
        if img_compression == 0:
            return (image,)  # ComfyUI returns the frames untouched, odd sizes included
        import torch

        return (torch.stack([h264_round_trip(frame, img_compression) for frame in image]),)


NODES = {"Video Slice": VideoSlice, "LTXVPreprocess": LTXVPreprocess}
