"""The ``hearth`` entry point of the upscale plugin: its nodes (every ``nodes_*.py``) and its tiny models.

Imported when plugins load, so no torch here: the node modules and the tiny writers import it when called.
"""

from __future__ import annotations

from pathlib import Path

from hearth.core.hookspecs import hookimpl
from hearth.core.model_folders import TinyModel
from hearth.core.nodes import collect_nodes


@hookimpl
def register_nodes():
    return collect_nodes(__package__)


def _writer(name: str):
    def write(path: Path, seed: int) -> None:
        from . import tiny

        getattr(tiny, name)(path, seed)

    return write


@hookimpl
def register_tiny_models():
    return {
        "esrgan-tiny": TinyModel("upscale_models", "tiny-esrgan-x4.safetensors", _writer("write_esrgan"),
                                 "ESRGAN 4x in the original key layout (UpscaleModelLoader)"),
        "realesrgan-x2-tiny": TinyModel("upscale_models", "tiny-realesrgan-x2.safetensors",
                                        _writer("write_realesrgan_x2"),
                                        "Real-ESRGAN 2x in the new key layout, pixel-unshuffle input"),
        "srvgg-compact-tiny": TinyModel("upscale_models", "tiny-srvgg-compact-x4.safetensors",
                                        _writer("write_compact"), "Real-ESRGAN compact (SRVGGNetCompact) 4x"),
    }
