"""ComfyUI's ``comfy_extras.nodes_clip_sdxl`` module: SDXL's text-encode nodes, Hearth's classes under ComfyUI's
names."""

from __future__ import annotations

from hearth_comfy_compat.comfy_nodes import node_exports

__getattr__ = node_exports(["CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner"])
