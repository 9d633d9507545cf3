"""Model-free image nodes of model families' modules, with ComfyUI's names and results: FluxKontextImageScale
(comfy_extras/nodes_flux.py).

It only prepares an image for a family's model and needs none: FluxKontextImageScale resizes to the Kontext
training resolution nearest in aspect ratio (lanczos after a centre crop, ComfyUI's ``common_upscale``).
"""

from __future__ import annotations

from typing import Any

from hearth.core.images import check_image, upscale

# (width, height) pairs Flux Kontext was trained at, as ComfyUI lists them.
KONTEXT_RESOLUTIONS = [
    (672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248), (880, 1184), (944, 1104),
    (1024, 1024), (1104, 944), (1184, 880), (1248, 832), (1328, 800), (1392, 752), (1456, 720), (1504, 688),
    (1568, 672),
]


def kontext_size(width: int, height: int) -> tuple[int, int]:
    """The listed resolution whose aspect ratio is nearest; on a tie the smaller width, as ComfyUI's ``min`` over
    (distance, width, height) tuples picks."""
    ratio = width / height
    _, best_w, best_h = min((abs(ratio - w / h), w, h) for w, h in KONTEXT_RESOLUTIONS)
    return best_w, best_h


class FluxKontextImageScale:
    CATEGORY = "advanced/conditioning/flux"
    DESCRIPTION = "This node resizes the image to one that is more optimal for flux kontext."
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    def execute(self, image: Any) -> tuple[Any]:
        check_image(image, "FluxKontextImageScale: image")
        width, height = kontext_size(image.shape[2], image.shape[1])
        return (upscale(image, width, height, "lanczos", "center"),)


NODES = {cls.__name__: cls for cls in (FluxKontextImageScale,)}
