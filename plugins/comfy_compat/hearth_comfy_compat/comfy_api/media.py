"""ComfyUI's ``comfy_api.input``, ``comfy_api.input_impl`` and ``comfy_api.util``: media value types for annotations.

Images, masks and latents are plain values in Hearth as in ComfyUI, so their type names are given, and so are the
video descriptions packs build node options from (``VideoContainer``, ``VideoCodec``, ``VideoComponents``). The
video file classes (``VideoInput``, ``VideoFromFile``...) are not provided: a pack importing them still loads, and
the node that uses one fails naming it (see :mod:`hearth_comfy_compat.hook`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

ImageInput = Any  # a float tensor [batch, height, width, channels]
MaskInput = Any  # a float tensor [batch, height, width]
LatentInput = dict  # {"samples": tensor, ...}
AudioInput = dict  # {"waveform": tensor [batch, channels, samples], "sample_rate": int}



class VideoContainer(enum.StrEnum):
    """Container formats a video may be saved in; ``as_input()`` is the COMBO list of their names."""

    AUTO = "auto"
    MP4 = "mp4"

    @classmethod
    def as_input(cls) -> list[str]:
        return [member.value for member in cls]

    @classmethod
    def get_extension(cls, value: str | VideoContainer) -> str:
        """The file extension of a container (``auto`` saves as mp4)."""
        member = cls(value)
        return "mp4" if member in (cls.AUTO, cls.MP4) else member.value


class VideoCodec(enum.StrEnum):
    """Video codecs; ``as_input()`` is the COMBO list of their names."""

    AUTO = "auto"
    H264 = "h264"

    @classmethod
    def as_input(cls) -> list[str]:
        return [member.value for member in cls]


@dataclass
class VideoComponents:
    """A video as its parts: frames ``[frames, height, width, channels]``, frame rate, optional AUDIO, metadata."""

    images: Any
    frame_rate: Fraction
    audio: Any = None
    metadata: dict[str, Any] | None = field(default=None)


__all__ = ["AudioInput", "ImageInput", "LatentInput", "MaskInput", "VideoCodec", "VideoComponents",
           "VideoContainer"]
