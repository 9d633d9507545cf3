"""Reading and writing audio files through PyAV, the way ComfyUI's audio nodes do.

Reading takes the first audio stream of anything FFmpeg opens (WAV, FLAC, MP3, Opus, M4A, or a video's sound) as
float32 ``[channels, samples]``: integer PCM is scaled by 2**15 / 2**31 as ComfyUI scales it. Writing encodes one
clip into memory (FLAC, MP3 through LAME, Opus in Ogg), with every metadata entry (``prompt``, ``workflow``) set
on the container as ComfyUI sets it, and the caller writes the bytes atomically. FLAC stores 16-bit samples:
PyAV converts the float samples with FFmpeg's rounding and clipping.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .audio_value import resample

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_BIT_RATES = {"64k": 64000, "96k": 96000, "128k": 128000, "192k": 192000, "256k": 256000, "320k": 320000}


class AudioFileError(ValueError):
    """A file that holds no decodable audio; the message names the file."""


def _to_float(samples: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(samples))
    if tensor.is_floating_point():
        return tensor.float()
    if tensor.dtype == torch.int16:
        return tensor.float() / 2 ** 15
    if tensor.dtype == torch.int32:
        return tensor.float() / 2 ** 31
    if tensor.dtype == torch.uint8:
        return (tensor.float() - 128) / 128
    raise AudioFileError(f"unsupported sample type {tensor.dtype}")


def decode(path: str | Path) -> tuple[torch.Tensor, int]:
    """``(waveform [channels, samples] float32, sample_rate)`` of the file's first audio stream."""
    import av

    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise AudioFileError(f"{path.name} is not an audio file FFmpeg can read ({exc})") from None
    with container:
        if not container.streams.audio:
            raise AudioFileError(f"{path.name} has no audio stream")
        stream = container.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        chunks = []
        try:
            for frame in container.decode(stream):
                samples = _to_float(frame.to_ndarray())
                if samples.shape[0] != channels:  # packed formats interleave the channels in one row
                    samples = samples.reshape(-1, channels).t()
                chunks.append(samples)
        except av.error.FFmpegError as exc:
            raise AudioFileError(f"{path.name}: its audio could not be decoded ({exc})") from None
    if not chunks:
        raise AudioFileError(f"{path.name}: no audio frames could be decoded")
    return torch.cat(chunks, dim=1), int(rate)


def output_rate(fmt: str, sample_rate: int) -> int:
    """The rate a clip is written at: Opus takes the next rate it supports (48 kHz at most), as in ComfyUI."""
    if fmt != "opus" or sample_rate in OPUS_RATES:
        return sample_rate
    return next((rate for rate in OPUS_RATES if rate > sample_rate), 48000)


def encode(waveform: torch.Tensor, sample_rate: int, fmt: str, quality: str = "128k",
           metadata: Mapping[str, str] | None = None) -> bytes:
    """One clip ``[channels, samples]`` as a ``fmt`` (``flac``, ``mp3``, ``opus``) file's bytes."""
    import av

    channels = int(waveform.shape[0])
    if channels not in (1, 2):
        raise ValueError(f"{channels}-channel audio cannot be saved: mono or stereo only; split or mix it first "
                         f"(SplitAudioChannels)")
    rate = output_rate(fmt, sample_rate)
    if rate != sample_rate:
        waveform = resample(waveform.float(), sample_rate, rate)
    if fmt == "mp3" and rate not in MP3_RATES:
        raise ValueError(f"MP3 cannot store {rate} Hz audio (LAME takes {', '.join(map(str, MP3_RATES))} Hz); "
                         f"save it as FLAC or Opus")
    if fmt == "opus" and _BIT_RATES.get(quality, 0) > 256000 * channels:
        raise ValueError(f"Opus takes at most 256 kbit/s per channel, so {quality} does not fit this mono clip; "
                         f"choose 192k or lower (or make it stereo)")
    layout = "mono" if channels == 1 else "stereo"
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        for key, value in (metadata or {}).items():
            container.metadata[key] = value
        codec = {"opus": "libopus", "mp3": "libmp3lame", "flac": "flac"}[fmt]
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if fmt == "mp3" and quality == "V0":
            stream.codec_context.qscale = 1  # LAME's variable bit rate at its best quality, as ComfyUI sets it
        elif fmt in ("mp3", "opus") and quality in _BIT_RATES:
            stream.bit_rate = _BIT_RATES[quality]
        interleaved = waveform.movedim(0, 1).reshape(1, -1).float().cpu().numpy()
        frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
        frame.sample_rate = rate
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()
