"""Hunyuan3D 2's model-free nodes with ComfyUI's names and inputs: EmptyLatentHunyuan3Dv2, Hunyuan3Dv2Conditioning
and Hunyuan3Dv2ConditioningMultiView (comfy_extras/nodes_hunyuan3d.py).

None needs a Hunyuan3D model: the empty latent is zeros of the shape-VAE's layout, and the two conditioning nodes
rearrange a CLIP vision output (Hearth's CLIPVisionEncode makes one) into the positive/negative pair the model
reads -- the last hidden state as the positive, zeros of its shape as the negative; the multi-view one adds a
fixed sine-cosine embedding of the view (front, left, back, right) to each view's states and joins them along
the token axis. Hearth has no Hunyuan3D model or mesh nodes yet, so these let its templates open and validate.
"""

from __future__ import annotations

from typing import Any

VIEWS = ("front", "left", "back", "right")


class EmptyLatentHunyuan3Dv2:
    CATEGORY = "latent/3d"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "resolution": ("INT", {"default": 3072, "min": 1, "max": 8192}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096,
                                   "tooltip": "The number of latent images in the batch."}),
        }}

    def execute(self, resolution: int, batch_size: int) -> tuple[dict[str, Any]]:
        import torch

        # The shape VAE's latent: 64 channels over `resolution` tokens; "type" tells ComfyUI's samplers what it is.
        return ({"samples": torch.zeros(batch_size, 64, resolution), "type": "hunyuan3dv2"},)


def _states(value: Any, node: str, name: str) -> Any:
    states = getattr(value, "last_hidden_state", None)
    if states is None or getattr(states, "ndim", 0) != 3:
        raise ValueError(f"{node}: {name} is not a CLIP_VISION_OUTPUT with a [batch, tokens, width] "
                         "last_hidden_state; connect CLIPVisionEncode's output")
    return states


def view_embedding(width: int, views: int = len(VIEWS)) -> Any:
    """``[views, width]`` sine-cosine embedding of the view index: frequencies 1 / 10000^(2i / width), the sines
    of index x frequency in the first half, the cosines in the second (ComfyUI's 1-D sincos position embedding)."""
    import torch

    freqs = 1.0 / 10000 ** (torch.arange(width // 2, dtype=torch.float32) / (width / 2.0))
    angles = torch.arange(views, dtype=torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class Hunyuan3Dv2Conditioning:
    CATEGORY = "conditioning/video_models"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"clip_vision_output": ("CLIP_VISION_OUTPUT",)}}

    def execute(self, clip_vision_output: Any) -> tuple[list[list[Any]], list[list[Any]]]:
        import torch

        states = _states(clip_vision_output, "Hunyuan3Dv2Conditioning", "clip_vision_output")
        return [[states, {}]], [[torch.zeros_like(states), {}]]


class Hunyuan3Dv2ConditioningMultiView:
    CATEGORY = "conditioning/video_models"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}, "optional": {view: ("CLIP_VISION_OUTPUT",) for view in VIEWS}}

    def execute(self, front: Any = None, left: Any = None, back: Any = None,
                right: Any = None) -> tuple[list[list[Any]], list[list[Any]]]:
        import torch

        given = [(index, view, value) for index, (view, value) in enumerate(zip(VIEWS, (front, left, back, right),
                                                                                   strict=True)) if value is not None]
        if not given:
            raise ValueError("Hunyuan3Dv2ConditioningMultiView: no view is connected; connect CLIPVisionEncode's "
                             "output to at least one of front, left, back, right")
        parts, embedding = [], None
        for index, view, value in given:
            states = _states(value, "Hunyuan3Dv2ConditioningMultiView", view)
            if parts and (states.shape[0] != parts[0].shape[0] or states.shape[-1] != parts[0].shape[-1]):
                raise ValueError(f"Hunyuan3Dv2ConditioningMultiView: {view} has states {tuple(states.shape)}, "
                                 f"unlike the first view's {tuple(parts[0].shape)}; encode every view with the "
                                 "same CLIP vision model and batch size")
            if embedding is None:
                embedding = view_embedding(states.shape[-1]).to(states.device)
            parts.append(states + embedding[index].to(states.dtype).reshape(1, 1, -1))
        joined = torch.cat(parts, dim=1)
        return [[joined, {}]], [[torch.zeros_like(joined), {}]]


NODES = {cls.__name__: cls for cls in (EmptyLatentHunyuan3Dv2, Hunyuan3Dv2Conditioning,
                                        Hunyuan3Dv2ConditioningMultiView)}
