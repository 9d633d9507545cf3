"""ComfyUI's ``comfy_extras.nodes_hunyuan`` module: Hunyuan video latents and conditioning, Hearth's classes under
ComfyUI's names where Hearth has the node."""

from __future__ import annotations

from hearth_comfy_compat.comfy_nodes import node_exports

__getattr__ = node_exports(["EmptyHunyuanLatentVideo", "CLIPTextEncodeHunyuanDiT", "TextEncodeHunyuanVideo_ImageToVideo",
                            "HunyuanImageToVideo"])
