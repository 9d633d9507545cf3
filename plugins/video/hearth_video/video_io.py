"""Video files through PyAV and animated images through Pillow: read and write clips of IMAGE frames.

A clip is IMAGE frames ``[F, H, W, 3]`` in 0..1, a frame rate, and optionally ComfyUI's AUDIO
``{"waveform": [B, C, S], "sample_rate": int}``. The VIDEO value (:class:`VideoFromComponents`,
:class:`VideoFromFile`) has the method names of ComfyUI's ``VideoInput``, so packs written against it work.

Every writer is all-or-nothing: the file is written under a temporary name in its destination folder and moved
into place (``os.replace``) only once complete, so a failure or an interrupt never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

# Every file is written under a temporary name and renamed into place (the core's helper: the server sweeps what a
# killed writer left).
from hearth.core.context import atomic_path

# Encoders tried for "h264", best first: the software ones everywhere, then the hardware ones a build may have.
H264_ENCODERS = ("libx264", "libopenh264", "h264_nvenc", "h264_qsv", "h264_amf", "h264_videotoolbox", "h264_v4l2m2m")
WEBM_ENCODERS = {"vp9": "libvpx-vp9", "av1": "libsvtav1"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".m4v", ".avi", ".gif", ".mpg", ".mpeg", ".ogv", ".flv"}
CONTAINERS = {"auto": "mp4", "mp4": "mp4"}  # SaveVideo's ``format`` choices and the container each writes
CODECS = ("auto", "h264")

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration to stderr unless told not to


class VideoFileError(ValueError):
    """A video file could not be read or written; the message names the file and what to do."""


# -- frames --------------------------------------------------------------------------------------------------------

def to_uint8(images: Any) -> np.ndarray:
    """IMAGE ``[F, H, W, C]`` in 0..1 (tensor or array) -> ``uint8`` RGB ``[F, H, W, 3]``."""
    if hasattr(images, "detach"):
        images = images.detach().float().cpu().numpy()
    frames = np.asarray(images, dtype=np.float32)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[0] == 0 or frames.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected IMAGE frames [F, H, W, 3] with at least one frame, got shape {list(frames.shape)}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    # ComfyUI's video and animation savers scale, clip and truncate (0.999 becomes 254, not 255).
    return np.clip(frames[..., :3] * 255.0, 0, 255).astype(np.uint8)


def frame_rate(fps: float) -> Fraction:
    """``fps`` as an exact rate: whole and NTSC rates (23.976 -> 24000/1001) stay exact, others to 1/1000."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    for base in (24, 30, 60, 120):
        if abs(fps - base * 1000 / 1001) < 5e-4:
            return Fraction(base * 1000, 1001)
    return Fraction(round(fps * 1000), 1000)


def _even(frames: np.ndarray) -> np.ndarray:
    # 4:2:0 video needs even sizes: repeat the last row / column rather than drop picture.
    _, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else frames


@cache
def _encoder_works(name: str, pix_fmt: str) -> bool:
    import av

    try:
        context = av.CodecContext.create(name, "w")
        context.width, context.height, context.pix_fmt = 64, 64, pix_fmt
        context.time_base = Fraction(1, 24)
        context.open()
        return True
    except Exception:  # missing from this build, or hardware that is not here
        return False


def h264_encoder() -> str:
    """The first H.264 encoder this PyAV build can open."""
    for name in H264_ENCODERS:
        if _encoder_works(name, "yuv420p"):
            return name
    raise VideoFileError("this PyAV build has no working H.264 encoder (tried " + ", ".join(H264_ENCODERS)
                         + "); install a PyAV wheel built with libx264, or save as WEBM (SaveWEBM)")


def metadata_tags(prompt: Any = None, extra_pnginfo: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The prompt and workflow as a container's text tags (JSON), the way ComfyUI stores them in videos."""
    out = {key: json.dumps(value) for key, value in (extra_pnginfo or {}).items()}
    if prompt is not None:
        out["prompt"] = json.dumps(prompt)
    return out


def _add_audio(container: Any, audio: Mapping[str, Any], codec: str) -> tuple[Any, Any]:
    import av

    waveform = audio["waveform"]
    if hasattr(waveform, "detach"):
        waveform = waveform.detach().float().cpu().numpy()
    waveform = np.asarray(waveform, dtype=np.float32)
    samples = waveform[0] if waveform.ndim == 3 else waveform  # [C, S]: the first clip of the batch
    rate = int(audio["sample_rate"])
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    stream = container.add_stream(codec, rate=rate)
    stream.layout = layout
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:2]), format="fltp", layout=layout)
    frame.sample_rate = rate
    return stream, frame


def write_video(path: str | os.PathLike[str], images: Any, fps: float, *, codec: str = "h264",
                audio: Mapping[str, Any] | None = None, crf: float | None = None,
                metadata: Mapping[str, str] | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
    """Encode frames (and audio) into ``path``: MP4/MKV/MOV with ``codec`` h264, WEBM with vp9 or av1.

    The frame rate is stored exactly (:func:`frame_rate`), so a reader gets the same fps and frame count back.
    :raises VideoFileError: naming the file when the encoder is missing or the write fails; nothing is left.
    """
    import av

    path = Path(path)
    frames = to_uint8(images)
    if codec in ("h264", "auto"):
        encoder, pix_fmt, options = h264_encoder(), "yuv420p", {"crf": str(int(crf if crf is not None else 19))}
        frames = _even(frames)
    elif codec in WEBM_ENCODERS:
        encoder = WEBM_ENCODERS[codec]
        pix_fmt = "yuv420p10le" if codec == "av1" else "yuv420p"
        options = {"crf": str(int(crf if crf is not None else 32))}
        if codec == "av1":
            options["preset"] = "8"
        frames = _even(frames)
        if not _encoder_works(encoder, pix_fmt):
            raise VideoFileError(f"{path}: this PyAV build cannot encode {codec} ({encoder} is missing)")
    else:
        raise VideoFileError(f"{path}: unknown codec {codec!r}; use h264, vp9 or av1")
    count, height, width = frames.shape[0], frames.shape[1], frames.shape[2]
    try:
        with atomic_path(path) as temp:
            options_out = {"movflags": "use_metadata_tags"} if path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
            with av.open(str(temp), mode="w", options=options_out) as container:
                for key, value in (metadata or {}).items():
                    container.metadata[key] = value
                stream = container.add_stream(encoder, rate=frame_rate(fps))
                stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
                if codec in WEBM_ENCODERS:
                    stream.bit_rate = 0  # constant quality: crf alone decides
                stream.options = options
                sound = None
                if audio is not None:
                    sound = _add_audio(container, audio, "libopus" if path.suffix.lower() == ".webm" else "aac")
                for index, pixels in enumerate(frames):
                    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                    container.mux(stream.encode(frame))
                    if progress is not None:
                        progress(index + 1, count)
                container.mux(stream.encode())
                if sound is not None:
                    audio_stream, audio_frame = sound
                    container.mux(audio_stream.encode(audio_frame))
                    container.mux(audio_stream.encode())
    except VideoFileError:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise VideoFileError(f"{path}: could not write the video ({exc})") from exc
    return path


def write_animated(path: str | os.PathLike[str], images: Any, fps: float, image_format: str, **options: Any) -> Path:
    """Frames as one animated WEBP or PNG (Pillow), each frame shown ``1000 / fps`` ms."""
    from PIL import Image

    frames = [Image.fromarray(pixels) for pixels in to_uint8(images)]
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    with atomic_path(path) as temp:
        frames[0].save(temp, format=image_format, save_all=True, append_images=frames[1:],
                       duration=int(1000.0 / fps), **options)
    return Path(path)


def remux(source: str | os.PathLike[str], path: str | os.PathLike[str], metadata: Mapping[str, str]) -> Path:
    """Copy the video and audio packets of ``source`` into a new file at ``path``, with ``metadata`` as its tags."""
    import av

    source, path = Path(source), Path(path)
    try:
        with _open(source) as reader, atomic_path(path) as temp:
            with av.open(str(temp), mode="w", options={"movflags": "use_metadata_tags"}) as writer:
                for key, value in metadata.items():
                    writer.metadata[key] = value
                streams = [reader.streams.video[0], *reader.streams.audio[:1]]
                mapped = {stream.index: writer.add_stream_from_template(stream) for stream in streams}
                for packet in reader.demux(streams):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.stream = mapped[packet.stream.index]
                    writer.mux(packet)
    except av.FFmpegError as exc:
        raise VideoFileError(f"{path}: could not copy {source.name} into it ({exc})") from exc
    return path


# -- reading -------------------------------------------------------------------------------------------------------

@dataclass
class VideoComponents:
    """What a clip is made of (ComfyUI's ``VideoComponents``)."""

    images: Any
    frame_rate: Fraction
    audio: dict[str, Any] | None = None


def _open(path: Path) -> Any:
    import av

    if not path.is_file():
        raise VideoFileError(f"{path}: no such video file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, ValueError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise VideoFileError(f"{path}: not a readable video file ({reason}); is it complete, and in a format FFmpeg "
                             f"reads (MP4, WEBM, MKV, MOV...)?") from None
    if not container.streams.video:
        container.close()
        raise VideoFileError(f"{path}: holds no video stream")
    if container.streams.video[0].codec_context is None:  # FFmpeg knows the container, not this codec
        container.close()
        raise VideoFileError(f"{path}: its video codec is not one this PyAV build decodes; convert it to H.264 MP4 "
                             f"or VP9 WEBM")
    return container


def probe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Width, height, frame rate, frame count (counted when the header does not say) and container of a file."""
    import av

    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        count = stream.frames
        if not count:
            try:
                count = sum(1 for packet in container.demux(stream) if packet.size)
            except av.FFmpegError as exc:
                raise VideoFileError(f"{path}: the video stream is damaged ({exc})") from None
        return {"width": stream.codec_context.width, "height": stream.codec_context.height, "frame_rate": Fraction(rate),
                "frame_count": count, "container": container.format.name, "codec": stream.codec_context.name}


def read_video(path: str | os.PathLike[str]) -> VideoComponents:
    """Every frame of the first video stream as IMAGE ``[F, H, W, 3]``, its frame rate, and the first audio stream."""
    import av
    import torch

    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or stream.guessed_rate or 0)
        frames = []
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
        except av.FFmpegError as exc:
            raise VideoFileError(f"{path}: the video stream is damaged after {len(frames)} frames ({exc})") from None
        if not frames:
            raise VideoFileError(f"{path}: the video stream holds no frames it could decode")
        audio = None
        if container.streams.audio:
            container.seek(0)
            chunks, sample_rate = [], None
            try:
                for frame in container.decode(audio=0):
                    sample_rate = frame.sample_rate
                    chunks.append(frame.to_ndarray().reshape(len(frame.layout.channels), -1)
                                  if frame.format.is_planar else frame.to_ndarray().reshape(-1, len(frame.layout.channels)).T)
            except av.FFmpegError as exc:
                raise VideoFileError(f"{path}: the audio stream is damaged ({exc})") from None
            if chunks:
                samples = np.concatenate(chunks, axis=1).astype(np.float32)
                audio = {"waveform": torch.from_numpy(samples).unsqueeze(0), "sample_rate": int(sample_rate)}
    images = torch.from_numpy(np.stack(frames)).float().div_(255.0)
    if not rate:
        rate = Fraction(24)  # a stream that declares no rate: ComfyUI's default
    return VideoComponents(images=images, frame_rate=rate, audio=audio)


# -- the VIDEO value -----------------------------------------------------------------------------------------------

class VideoInput:
    """A clip as nodes pass it around (type ``VIDEO``); subclasses say where its frames come from."""

    def get_components(self) -> VideoComponents:
        raise NotImplementedError

    def get_dimensions(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        images = self.get_components().images
        return int(images.shape[2]), int(images.shape[1])

    def get_frame_rate(self) -> Fraction:
        return self.get_components().frame_rate

    def get_frame_count(self) -> int:
        return int(self.get_components().images.shape[0])

    def get_duration(self) -> float:
        """Seconds: frames divided by the frame rate."""
        return self.get_frame_count() / float(self.get_frame_rate())

    def get_container_format(self) -> str:
        return "mp4"

    def save_to(self, path: str | os.PathLike[str], format: str = "auto", codec: str = "auto",
                metadata: Mapping[str, Any] | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
        """Encode the clip into ``path`` (MP4, H.264); ``metadata`` values are stored as JSON text tags."""
        if format not in CONTAINERS:
            raise VideoFileError(f"{path}: unknown format {format!r}; use one of {', '.join(CONTAINERS)}")
        if codec not in CODECS:
            raise VideoFileError(f"{path}: unknown codec {codec!r}; use one of {', '.join(CODECS)}")
        parts = self.get_components()
        tags = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
        return write_video(path, parts.images, float(parts.frame_rate), codec="h264", audio=parts.audio,
                           metadata=tags, progress=progress)


class VideoFromComponents(VideoInput):
    """A clip made from frames in memory (CreateVideo)."""

    def __init__(self, components: VideoComponents) -> None:
        to_uint8(components.images[:1])  # refuse a malformed IMAGE here, not at save time
        self.components = components

    def get_components(self) -> VideoComponents:
        return self.components

    def __repr__(self) -> str:
        w, h = self.get_dimensions()
        return f"<Video {self.get_frame_count()} frames {w}x{h} @ {float(self.get_frame_rate()):g} fps>"


class VideoFromFile(VideoInput):
    """A clip in a file (LoadVideo); frames are decoded when first asked for, the header is read at once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.info = probe(self.path)  # a corrupt or unsupported file fails here, naming itself
        self._components: VideoComponents | None = None

    def get_components(self) -> VideoComponents:
        if self._components is None:
            self._components = read_video(self.path)
        return self._components

    def get_dimensions(self) -> tuple[int, int]:
        return self.info["width"], self.info["height"]

    def get_frame_rate(self) -> Fraction:
        return self.info["frame_rate"] or self.get_components().frame_rate

    def get_frame_count(self) -> int:
        return self.info["frame_count"] or super().get_frame_count()

    def get_container_format(self) -> str:
        return self.info["container"]

    def get_stream_source(self) -> str:
        return str(self.path)

    def save_to(self, path: str | os.PathLike[str], format: str = "auto", codec: str = "auto",
                metadata: Mapping[str, Any] | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
        """An H.264 MP4 source is copied packet for packet (no second lossy encode); anything else is re-encoded."""
        if format in CONTAINERS and codec in CODECS and self.info["codec"] == "h264" and "mp4" in self.info["container"]:
            return remux(self.path, path, {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
        return super().save_to(path, format, codec, metadata, progress)

    def __repr__(self) -> str:
        return f"<Video {self.path.name}>"
