"""ComfyUI's ``comfy_api.input``, ``comfy_api.input_impl`` and ``comfy_api.util``: media value types for annotations.

Images, masks and latents are plain values in Hearth as in ComfyUI, so their type names are given. The video
classes (``VideoInput``, ``VideoFromFile``, ``VideoContainer``...) are not provided: a pack importing them still
loads, and the node that uses one fails naming it (see :mod:`hearth_comfy_compat.hook`).
"""

from __future__ import annotations

from typing import Any

ImageInput = Any  # a float tensor [batch, height, width, channels]
MaskInput = Any  # a float tensor [batch, height, width]
LatentInput = dict  # {"samples": tensor, ...}
AudioInput = dict  # {"waveform": tensor [batch, channels, samples], "sample_rate": int}

__all__ = ["AudioInput", "ImageInput", "LatentInput", "MaskInput"]
