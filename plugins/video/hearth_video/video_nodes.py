"""Video file nodes with ComfyUI's names, inputs and outputs, and the Wan 2.1 VAE's format and tiny model.

SaveAnimatedWEBP, SaveAnimatedPNG, SaveWEBM and SaveVideo write into the output folder the way SaveImage does
(``{prefix}_{counter:05}_.{ext}``, the prompt and workflow embedded) and answer ComfyUI's UI shape
``{"ui": {"images": [{filename, subfolder, type}], "animated": (True,)}}``, so the files show in history and
``/view``. CreateVideo, GetVideoComponents and LoadVideo pass the VIDEO value of :mod:`hearth_video.video_io`.
Importing this module does not import torch or PyAV.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hearth.core import context
from hearth.core.model_folders import TinyModel

HIDDEN = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
WEBP_METHODS = {"default": 4, "fastest": 0, "slowest": 6}


def _destination(filename_prefix: str, width: int, height: int) -> tuple[Path, str, int, str]:
    """(directory, base name, counter, subfolder) for the next output of ``filename_prefix``, as SaveImage finds it."""
    folder = context.folders().output
    directory, base, counter = context.save_path(filename_prefix, folder, width, height)
    subfolder = directory.relative_to(folder.resolve()).as_posix()
    return directory, base, counter, "" if subfolder == "." else subfolder


def _size(images: Any) -> tuple[int, int]:
    return int(images.shape[2]), int(images.shape[1])


def _saved(name: str, subfolder: str) -> dict[str, Any]:
    return {"ui": {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}], "animated": (True,)}}


def _check_frames(node: str, images: Any) -> None:
    if images is None or getattr(images, "ndim", 0) != 4 or images.shape[0] == 0:
        shape = list(getattr(images, "shape", []))
        raise ValueError(f"{node}: images must be IMAGE frames [F, H, W, 3] with at least one frame, got {shape}")


def _progress(done: int, total: int) -> None:
    context.progress(done, total)  # also stops a long encode when the prompt is interrupted


class SaveAnimatedWEBP:
    DISPLAY_NAME = "Save Animated WEBP"
    CATEGORY = "image/animation"
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    DESCRIPTION = "Saves the frames as one animated WEBP in the output folder."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE",),
                             "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                             "fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}),
                             "lossless": ("BOOLEAN", {"default": True}),
                             "quality": ("INT", {"default": 80, "min": 0, "max": 100}),
                             "method": (list(WEBP_METHODS),)},
                "hidden": HIDDEN}

    def save_images(self, images: Any, fps: float, filename_prefix: str = "ComfyUI", lossless: bool = True,
                    quality: int = 80, method: str = "default", num_frames: int = 0, prompt: Any = None,
                    extra_pnginfo: Any = None) -> dict[str, Any]:
        from PIL import Image

        from .video_io import write_animated

        _check_frames("SaveAnimatedWEBP", images)
        if method not in WEBP_METHODS:
            raise ValueError(f"SaveAnimatedWEBP: method must be one of {', '.join(WEBP_METHODS)}, got {method!r}")
        exif = Image.Exif()
        # ComfyUI's places: the prompt in ImageDescription's tag (0x0110), each workflow key below Make (0x010f).
        if prompt is not None:
            exif[0x0110] = "prompt:" + json.dumps(prompt)
        for offset, (key, value) in enumerate((extra_pnginfo or {}).items()):
            exif[0x010F - offset] = f"{key}:{json.dumps(value)}"
        directory, base, counter, subfolder = _destination(filename_prefix, *_size(images))
        step = num_frames or images.shape[0]
        results = []
        for start in range(0, images.shape[0], step):
            name = f"{base}_{counter:05}_.webp"
            write_animated(directory / name, images[start:start + step], fps, "WEBP", lossless=lossless,
                           quality=quality, method=WEBP_METHODS[method], exif=exif)
            results.append({"filename": name, "subfolder": subfolder, "type": "output"})
            counter += 1
        return {"ui": {"images": results, "animated": (step != 1,)}}


class SaveAnimatedPNG:
    DISPLAY_NAME = "Save Animated PNG"
    CATEGORY = "image/animation"
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    DESCRIPTION = "Saves the frames as one animated PNG (APNG) in the output folder."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE",),
                             "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                             "fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}),
                             "compress_level": ("INT", {"default": 4, "min": 0, "max": 9})},
                "hidden": HIDDEN}

    def save_images(self, images: Any, fps: float, compress_level: int, filename_prefix: str = "ComfyUI",
                    prompt: Any = None, extra_pnginfo: Any = None) -> dict[str, Any]:
        from PIL import PngImagePlugin

        from .video_io import write_animated

        _check_frames("SaveAnimatedPNG", images)
        info = PngImagePlugin.PngInfo()
        # ComfyUI's "comf" chunks after the image data: key, NUL, JSON.
        entries = ([("prompt", prompt)] if prompt is not None else []) + list((extra_pnginfo or {}).items())
        for key, value in entries:
            info.add(b"comf", key.encode("latin-1") + b"\0" + json.dumps(value).encode("latin-1", "replace"),
                     after_idat=True)
        directory, base, counter, subfolder = _destination(filename_prefix, *_size(images))
        name = f"{base}_{counter:05}_.png"
        write_animated(directory / name, images, fps, "PNG", pnginfo=info, compress_level=compress_level)
        return _saved(name, subfolder)


class SaveWEBM:
    DISPLAY_NAME = "Save WEBM"
    CATEGORY = "image/video"
    EXPERIMENTAL = True
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    DESCRIPTION = "Saves the frames as a WEBM video (VP9 or AV1) in the output folder."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE",),
                             "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                             "codec": (["vp9", "av1"],),
                             "fps": ("FLOAT", {"default": 24.0, "min": 0.01, "max": 1000.0, "step": 0.01}),
                             "crf": ("FLOAT", {"default": 32.0, "min": 0, "max": 63.0, "step": 1,
                                               "tooltip": "Higher crf means lower quality with a smaller file size, "
                                                          "lower crf means higher quality higher filesize."})},
                "hidden": HIDDEN}

    def save_images(self, images: Any, codec: str, fps: float, filename_prefix: str, crf: float, prompt: Any = None,
                    extra_pnginfo: Any = None) -> dict[str, Any]:
        from .video_io import metadata_tags, write_video

        _check_frames("SaveWEBM", images)
        directory, base, counter, subfolder = _destination(filename_prefix, *_size(images))
        name = f"{base}_{counter:05}_.webm"
        write_video(directory / name, images, fps, codec=codec, crf=crf, metadata=metadata_tags(prompt, extra_pnginfo),
                    progress=_progress)
        return _saved(name, subfolder)


class SaveVideo:
    DISPLAY_NAME = "Save Video"
    CATEGORY = "image/video"
    RETURN_TYPES = ()
    FUNCTION = "save_video"
    OUTPUT_NODE = True
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        from .video_io import CODECS, CONTAINERS

        return {"required": {
            "video": ("VIDEO", {"tooltip": "The video to save."}),
            "filename_prefix": ("STRING", {"default": "video/ComfyUI", "tooltip": "The prefix for the file to save. "
                                           "This may include formatting information such as %date:yyyy-MM-dd% or "
                                           "%Empty Latent Image.width% to include values from nodes."}),
            "format": (list(CONTAINERS), {"default": "auto", "tooltip": "The format to save the video as."}),
            "codec": (list(CODECS), {"default": "auto", "tooltip": "The codec to use for the video."}),
        }, "hidden": HIDDEN}

    def save_video(self, video: Any, filename_prefix: str, format: str = "auto", codec: str = "auto",
                   prompt: Any = None, extra_pnginfo: Any = None) -> dict[str, Any]:
        from .video_io import CONTAINERS

        if not hasattr(video, "save_to"):
            raise ValueError(f"SaveVideo: video must be a VIDEO (from CreateVideo or LoadVideo), got {type(video).__name__}")
        metadata = dict(extra_pnginfo or {})
        if prompt is not None:
            metadata["prompt"] = prompt
        directory, base, counter, subfolder = _destination(filename_prefix, *video.get_dimensions())
        name = f"{base}_{counter:05}_.{CONTAINERS.get(format, 'mp4')}"
        video.save_to(directory / name, format=format, codec=codec, metadata=metadata or None, progress=_progress)
        return _saved(name, subfolder)


class CreateVideo:
    DISPLAY_NAME = "Create Video"
    CATEGORY = "image/video"
    DESCRIPTION = "Create a video from images."
    RETURN_TYPES = ("VIDEO",)
    FUNCTION = "create_video"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE", {"tooltip": "The images to create a video from."}),
                             "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0, "step": 1.0})},
                "optional": {"audio": ("AUDIO", {"tooltip": "The audio to add to the video."})}}

    def create_video(self, images: Any, fps: float, audio: Any = None) -> tuple[Any]:
        from .video_io import VideoComponents, VideoFromComponents, frame_rate

        _check_frames("CreateVideo", images)
        return (VideoFromComponents(VideoComponents(images=images, frame_rate=frame_rate(fps), audio=audio)),)


class GetVideoComponents:
    DISPLAY_NAME = "Get Video Components"
    CATEGORY = "image/video"
    DESCRIPTION = "Extracts all components from a video: frames, audio, and framerate."
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")
    RETURN_NAMES = ("images", "audio", "fps")
    FUNCTION = "get_components"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"video": ("VIDEO", {"tooltip": "The video to extract components from."})}}

    def get_components(self, video: Any) -> tuple[Any, Any, float]:
        parts = video.get_components()
        return parts.images, parts.audio, float(parts.frame_rate)


def input_videos() -> list[str]:
    from .video_io import VIDEO_SUFFIXES

    root = context.folders().input
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


class LoadVideo:
    DISPLAY_NAME = "Load Video"
    CATEGORY = "image/video"
    DESCRIPTION = "Loads a video file from the input folder."
    RETURN_TYPES = ("VIDEO",)
    FUNCTION = "load_video"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"file": (input_videos(), {"video_upload": True})}}

    def load_video(self, file: str) -> tuple[Any]:
        from .video_io import VideoFromFile

        return (VideoFromFile(context.annotated_path(file)),)

    @classmethod
    def IS_CHANGED(cls, file: str) -> float:
        try:
            return os.path.getmtime(context.annotated_path(file))
        except (OSError, ValueError):
            return float("nan")  # never equal to itself: run again, and let validation name the problem

    @classmethod
    def VALIDATE_INPUTS(cls, file: str) -> bool | str:
        try:
            path = context.annotated_path(file)
        except ValueError as exc:
            return str(exc)
        if not path.is_file():
            return f"Invalid video file: {file} (no file at {path})"
        return True


def _write_tiny_wan_vae(path, seed: int = 0) -> None:
    from .wan_vae import write_tiny_wan_vae

    write_tiny_wan_vae(path, seed)


def model_formats() -> list:
    from .wan_vae import model_format

    return [model_format()]


NODES: dict = {cls.__name__: cls for cls in (SaveAnimatedWEBP, SaveAnimatedPNG, SaveWEBM, SaveVideo, CreateVideo,
                                             GetVideoComponents, LoadVideo)}
TINY_MODELS: dict = {
    "wan-vae": TinyModel("vae", "tiny-wan-vae.safetensors", _write_tiny_wan_vae,
                         "Wan 2.1 causal 3D VAE (random weights, 8 base channels), ~4 MB"),
}
