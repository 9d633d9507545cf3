"""ComfyUI's ``comfy_extras.nodes_flux`` module: ``FluxGuidance`` (the distilled guidance value a Flux model reads from
its CONDITIONING), and the other Flux node classes by ComfyUI's names (recorded stand-ins where Hearth lacks them)."""

from __future__ import annotations

from typing import Any

from hearth_comfy_compat.comfy_nodes import node_exports
from hearth_comfy_compat.node_helpers import conditioning_set_values

__all__ = ["FluxGuidance"]


class FluxGuidance:
    """CONDITIONING with ``guidance`` set on every entry."""

    CATEGORY = "advanced/conditioning/flux"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {"required": {"conditioning": ("CONDITIONING",),
                             "guidance": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 100.0, "step": 0.1})}}

    def append(self, conditioning: list[Any], guidance: float) -> tuple[list[Any]]:
        return (conditioning_set_values(conditioning, {"guidance": guidance}),)


__getattr__ = node_exports(["CLIPTextEncodeFlux", "FluxDisableGuidance", "FluxKontextImageScale",
                            "FluxKontextMultiReferenceLatentMethod"])
