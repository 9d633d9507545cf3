"""ComfyUI's ``comfy_extras.nodes_images`` module: image batch, crop and animated-save nodes, Hearth's classes under
ComfyUI's names where Hearth has the node, recorded stand-ins otherwise."""

from __future__ import annotations

from hearth_comfy_compat.comfy_nodes import node_exports

__getattr__ = node_exports([
    "ImageCrop", "RepeatImageBatch", "ImageFromBatch", "ImageAddNoise", "SaveAnimatedWEBP", "SaveAnimatedPNG",
    "SaveSVGNode", "ImageStitch", "ResizeAndPadImage", "GetImageSize", "ImageRotate", "ImageFlip",
])
