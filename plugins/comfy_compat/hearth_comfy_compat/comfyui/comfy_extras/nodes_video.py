"""ComfyUI's ``comfy_extras.nodes_video`` module: video save, load and assembly nodes, Hearth's classes under
ComfyUI's names."""

from __future__ import annotations

from hearth_comfy_compat.comfy_nodes import node_exports

__getattr__ = node_exports(["SaveWEBM", "SaveVideo", "CreateVideo", "GetVideoComponents", "LoadVideo"])
