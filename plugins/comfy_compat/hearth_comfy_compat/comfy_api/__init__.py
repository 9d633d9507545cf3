"""ComfyUI's versioned node API (``comfy_api.latest``, ``comfy_api.v0_0_2``): V3 nodes on Hearth's executor.

A V3 pack exports ``comfy_entrypoint()`` (sync or async) returning a :class:`ComfyExtension` whose
``get_node_list()`` names its :class:`io.ComfyNode` classes; the custom-node loader registers each under its
schema's ``node_id``. See :mod:`hearth_comfy_compat.comfy_api.io` for how a V3 class meets the V1 node contract.
"""

from __future__ import annotations

import abc
from typing import Any

from hearth.core import context
from hearth_comfy_compat.comfy_api import io, media, ui


class ComfyExtension(abc.ABC):
    """What a V3 pack's ``comfy_entrypoint()`` returns."""

    async def on_load(self) -> None:  # noqa: B027 - optional for subclasses
        """Called once when the pack loads, before :meth:`get_node_list`."""

    @abc.abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The pack's node classes."""


class _Execution:
    def set_progress(self, value: float, max_value: float, node_id: str | None = None, preview_image: Any = None,
                     ignore_size_limit: bool = False) -> None:
        ctx = context.current()
        if ctx is None:
            raise RuntimeError("set_progress was called outside a running node")
        ctx.progress(value, max_value, preview_image)


class _AsyncExecution(_Execution):
    async def set_progress(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().set_progress(*args, **kwargs)


class ComfyAPISync:
    """``ComfyAPISync().execution.set_progress(value, max)``: progress of the running node."""

    def __init__(self) -> None:
        self.execution = _Execution()


class ComfyAPI:
    """``await ComfyAPI().execution.set_progress(value, max)``."""

    def __init__(self) -> None:
        self.execution = _AsyncExecution()


class Input:
    """Type names for annotations (``def execute(cls, image: Input.Image)``): Hearth's values are ComfyUI's."""

    Image = media.ImageInput
    Mask = media.MaskInput
    Latent = media.LatentInput
    Audio = media.AudioInput
    Video = Any


class Types:
    """``comfy_api.latest.Types``: the value descriptions nodes build options from."""

    VideoContainer = media.VideoContainer
    VideoCodec = media.VideoCodec
    VideoComponents = media.VideoComponents


IO = io
UI = ui

__all__ = ["IO", "UI", "ComfyAPI", "ComfyAPISync", "ComfyExtension", "Input", "Types", "io", "ui"]
