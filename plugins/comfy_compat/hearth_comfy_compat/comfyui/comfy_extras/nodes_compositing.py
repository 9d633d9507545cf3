"""ComfyUI's ``comfy_extras.nodes_compositing`` module: ``JoinImageWithAlpha`` (an IMAGE and a MASK as one RGBA
IMAGE), and the other compositing node classes by ComfyUI's names (recorded stand-ins where Hearth lacks them)."""

from __future__ import annotations

from typing import Any

import torch

from hearth_comfy_compat.comfy_nodes import node_exports

__all__ = ["JoinImageWithAlpha"]


class JoinImageWithAlpha:
    """RGBA IMAGE from an IMAGE's colours and a MASK, the alpha being ``1 - mask`` (a MASK marks what to remove,
    as LoadImage makes one from transparency). The mask is resized to the image; the batch is the shorter one."""

    CATEGORY = "mask/compositing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "join_image_with_alpha"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {"required": {"image": ("IMAGE",), "alpha": ("MASK",)}}

    def join_image_with_alpha(self, image: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor]:
        batch = min(image.shape[0], alpha.shape[0] if alpha.ndim == 3 else 1)
        alpha = alpha.reshape(-1, 1, alpha.shape[-2], alpha.shape[-1]).float()
        alpha = torch.nn.functional.interpolate(alpha, size=image.shape[1:3], mode="bilinear")[:, 0]
        out = torch.cat([image[:batch, ..., :3], (1.0 - alpha[:batch, ..., None]).to(image)], dim=-1)
        return (out,)


__getattr__ = node_exports(["PorterDuffImageComposite", "SplitImageWithAlpha"])
