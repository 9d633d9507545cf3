"""ComfyUI's audio file nodes (comfy_extras/nodes_audio.py): LoadAudio, RecordAudio, the savers and PreviewAudio.

Savers name files as SaveImage does, ``{prefix}_{counter:05}_.{format}`` (``%batch_num%`` filled per clip), refuse
a ``filename_prefix`` that leads out of the output folder, write each file under a temporary name renamed into
place, and report ``{"ui": {"audio": [{filename, subfolder, type}]}}``. The workflow goes into the file as
metadata entries ``prompt`` and one per ``extra_pnginfo`` key (``workflow``), JSON-encoded, as ComfyUI writes them.
SaveAudioAdvanced's ``format`` is ComfyUI's dynamic combo: its quality arrives as the input ``format.quality``.
Imported when plugins load: torch and PyAV are imported inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from pathlib import Path
from typing import Any

from hearth.core import context
from hearth.core.context import annotated_path, atomic_path, save_path

# What LoadAudio lists: ComfyUI lists the input folder's audio and video files (by MIME type).
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma",
                            ".webm", ".mp4", ".mkv", ".mov", ".avi"})
MP3_QUALITIES = ["V0", "128k", "320k"]
OPUS_QUALITIES = ["64k", "96k", "128k", "192k", "320k"]
ADVANCED_QUALITIES = {"flac": [], "mp3": MP3_QUALITIES, "opus": [*OPUS_QUALITIES[:4], "256k", "320k"]}


def input_audio_files() -> list[str]:
    root = context.folders().input
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))


def _resolve(node: str, name: str) -> Path:
    try:
        path = annotated_path(name)
    except ValueError:
        raise ValueError(f"{node}: {name!r} is outside the input folder; choose a file from the list (or upload "
                         f"one)") from None
    if not path.is_file():
        raise ValueError(f"{node}: no audio file {name!r} in the input folder ({path})")
    return path


def _load(node: str, name: str) -> tuple[dict[str, Any]]:
    from .audio_files import AudioFileError, decode

    path = _resolve(node, name)
    try:
        waveform, rate = decode(path)
    except AudioFileError as exc:
        raise ValueError(f"{node}: {exc}") from None
    return ({"waveform": waveform.unsqueeze(0), "sample_rate": rate},)


def _file_hash(name: str) -> str:
    digest = hashlib.sha256()
    with open(annotated_path(name), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _validate(node: str, name: str) -> bool | str:
    try:
        _resolve(node, name)
    except ValueError as exc:
        return str(exc)
    return True


class LoadAudio:
    """Load an audio file (or a video's sound) from the input folder as AUDIO ``[1, channels, samples]``."""

    DISPLAY_NAME = "Load Audio"
    CATEGORY = "audio"
    RETURN_TYPES = ("AUDIO",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio": (input_audio_files(), {"audio_upload": True})}}

    def load(self, audio: str) -> tuple[dict[str, Any]]:
        return _load("LoadAudio", audio)

    @classmethod
    def IS_CHANGED(cls, audio: str) -> str:
        return _file_hash(audio)

    @classmethod
    def VALIDATE_INPUTS(cls, audio: str) -> bool | str:
        return _validate("LoadAudio", audio)


class RecordAudio:
    """A recording the browser uploaded (its annotated file name, ``"recording.wav [temp]"``), loaded as AUDIO."""

    DISPLAY_NAME = "Record Audio"
    CATEGORY = "audio"
    RETURN_TYPES = ("AUDIO",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio": ("AUDIO_RECORD", {})}}

    def load(self, audio: str) -> tuple[dict[str, Any]]:
        if not isinstance(audio, str) or not audio:
            raise ValueError("RecordAudio: nothing was recorded; record a clip (or use LoadAudio for a file)")
        return _load("RecordAudio", audio)


class SaveAudio:
    """Save audio as FLAC in the output folder, with the workflow in its metadata."""

    DISPLAY_NAME = "Save Audio (FLAC)"
    CATEGORY = "audio"
    RETURN_TYPES = ()
    FUNCTION = "save_flac"
    OUTPUT_NODE = True
    FORMAT = "flac"

    def __init__(self) -> None:
        self.kind = "output"
        self.prefix_append = ""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio": ("AUDIO",), "filename_prefix": ("STRING", {"default": "audio/ComfyUI"})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save(self, audio: Any, filename_prefix: str, fmt: str, quality: str = "128k", prompt: Any = None,
             extra_pnginfo: Any = None) -> dict[str, Any]:
        from .audio_files import encode
        from .audio_value import audio_input

        node = type(self).__name__
        waveform, rate = audio_input(audio, node)
        metadata = {}
        if prompt is not None:
            metadata["prompt"] = json.dumps(prompt)
        for key, value in (extra_pnginfo or {}).items():
            metadata[key] = json.dumps(value)
        folder = context.folders().for_type(self.kind)
        try:
            directory, base, counter = save_path(filename_prefix + self.prefix_append, folder, 0, 0)
        except ValueError as exc:
            raise ValueError(f"{node}: {exc}; use a prefix inside it (e.g. audio/ComfyUI)") from None
        subfolder = directory.relative_to(folder.resolve()).as_posix()
        results = []
        for batch_number, clip in enumerate(waveform.detach().cpu()):
            context.check_interrupted()
            try:
                data = encode(clip, rate, fmt, quality, metadata)
            except ValueError as exc:
                raise ValueError(f"{node}: {exc}") from None
            name = f"{base.replace('%batch_num%', str(batch_number))}_{counter:05}_.{fmt}"
            with atomic_path(directory / name) as temp:
                temp.write_bytes(data)
            results.append({"filename": name, "subfolder": "" if subfolder == "." else subfolder, "type": self.kind})
            counter += 1
        return {"ui": {"audio": results}}

    def save_flac(self, audio: Any, filename_prefix: str = "ComfyUI", prompt: Any = None,
                  extra_pnginfo: Any = None) -> dict[str, Any]:
        return self.save(audio, filename_prefix, self.FORMAT, prompt=prompt, extra_pnginfo=extra_pnginfo)


class SaveAudioMP3(SaveAudio):
    """Save audio as MP3 (LAME): ``V0`` is its best variable bit rate, or a constant 128 / 320 kbit/s."""

    DISPLAY_NAME = "Save Audio (MP3)"
    FUNCTION = "save_mp3"
    FORMAT = "mp3"
    QUALITIES = MP3_QUALITIES
    DEFAULT_QUALITY = "V0"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        required = {"audio": ("AUDIO",), "filename_prefix": ("STRING", {"default": "audio/ComfyUI"}),
                    "quality": (list(cls.QUALITIES), {"default": cls.DEFAULT_QUALITY})}
        return {"required": required, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save_mp3(self, audio: Any, filename_prefix: str = "ComfyUI", quality: str = "128k", prompt: Any = None,
                 extra_pnginfo: Any = None) -> dict[str, Any]:
        return self.save(audio, filename_prefix, self.FORMAT, quality, prompt, extra_pnginfo)


class SaveAudioOpus(SaveAudioMP3):
    """Save audio as Opus in Ogg at a chosen bit rate; resampled to the next rate Opus takes (48 kHz at most)."""

    DISPLAY_NAME = "Save Audio (Opus)"
    FUNCTION = "save_opus"
    FORMAT = "opus"
    QUALITIES = OPUS_QUALITIES
    DEFAULT_QUALITY = "128k"

    def save_opus(self, audio: Any, filename_prefix: str = "ComfyUI", quality: str = "128k", prompt: Any = None,
                  extra_pnginfo: Any = None) -> dict[str, Any]:
        return self.save(audio, filename_prefix, self.FORMAT, quality, prompt, extra_pnginfo)


class SaveAudioAdvanced(SaveAudio):
    """Save audio as FLAC, MP3 or Opus chosen by ``format``; passes the audio on.

    ComfyUI declares ``format`` as a dynamic combo whose MP3 and Opus options add a ``quality``; its value arrives
    as ``format.quality`` (optional here: FLAC has none). The choices of every format are listed together.
    """

    DISPLAY_NAME = "Save Audio"
    FUNCTION = "save_advanced"
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        qualities = list(dict.fromkeys(q for options in ADVANCED_QUALITIES.values() for q in options))
        return {"required": {"audio": ("AUDIO",), "filename_prefix": ("STRING", {"default": "audio/ComfyUI"}),
                             "format": (list(ADVANCED_QUALITIES), {"default": "flac"})},
                "optional": {"format.quality": (qualities, {"default": "V0"})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save_advanced(self, audio: Any, filename_prefix: str = "audio/ComfyUI", format: str = "flac",
                      prompt: Any = None, extra_pnginfo: Any = None, **dynamic: Any) -> dict[str, Any]:
        choices = ADVANCED_QUALITIES.get(format)
        if choices is None:
            raise ValueError(f"SaveAudioAdvanced: format {format!r} is not one of {', '.join(ADVANCED_QUALITIES)}")
        quality = dynamic.get("format.quality", choices[0] if choices else "128k")
        if choices and quality not in choices:
            raise ValueError(f"SaveAudioAdvanced: {format} quality {quality!r} is not one of {', '.join(choices)}")
        saved = self.save(audio, filename_prefix, format, quality, prompt, extra_pnginfo)
        return {"ui": saved["ui"], "result": (audio,)}


class PreviewAudio(SaveAudio):
    """Write audio as FLAC to the temp folder for the browser to play."""

    DISPLAY_NAME = "Preview Audio"

    def __init__(self) -> None:
        super().__init__()
        self.kind = "temp"
        self.prefix_append = "_temp_" + "".join(random.choice(string.ascii_lowercase) for _ in range(5))

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio": ("AUDIO",)}, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save_flac(self, audio: Any, filename_prefix: str = "ComfyUI", prompt: Any = None,
                  extra_pnginfo: Any = None) -> dict[str, Any]:
        return self.save(audio, filename_prefix, "flac", prompt=prompt, extra_pnginfo=extra_pnginfo)


NODES = {cls.__name__: cls for cls in (LoadAudio, RecordAudio, SaveAudio, SaveAudioMP3, SaveAudioOpus,
                                       SaveAudioAdvanced, PreviewAudio)}
