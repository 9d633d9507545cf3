"""ComfyUI's ``comfy_extras.nodes_latent`` module: ``LatentBatch`` (two LATENTs as one batch, as packs call it from
code), and the latent-math node classes by ComfyUI's names (Hearth's class where the registry has the node, a
recorded stand-in otherwise)."""

from __future__ import annotations

from typing import Any

import torch

from hearth_comfy_compat.comfy_nodes import node_exports
from hearth_comfy_compat.comfy_utils import common_upscale

__all__ = ["LatentBatch"]


class LatentBatch:
    """Join two LATENTs into one batch; the second is resized (bilinear, center crop) to the first's size when
    they differ. ``batch_index`` lists each item's position in the batch it came from."""

    CATEGORY = "latent/batch"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "batch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {"required": {"samples1": ("LATENT",), "samples2": ("LATENT",)}}

    def batch(self, samples1: dict[str, Any], samples2: dict[str, Any]) -> tuple[dict[str, Any]]:
        first, second = samples1["samples"], samples2["samples"]
        if first.shape[1:] != second.shape[1:]:
            second = common_upscale(second, first.shape[-1], first.shape[-2], "bilinear", "center")
        out = dict(samples1)
        out["samples"] = torch.cat([first, second.to(first)])
        out["batch_index"] = [*samples1.get("batch_index", range(first.shape[0])),
                              *samples2.get("batch_index", range(second.shape[0]))]
        return (out,)


__getattr__ = node_exports([
    "LatentAdd", "LatentSubtract", "LatentMultiply", "LatentInterpolate", "LatentBatchSeedBehavior",
    "LatentApplyOperation", "LatentApplyOperationCFG", "LatentOperationTonemapReinhard", "LatentOperationSharpen",
    "LatentConcat", "LatentCut",
])
