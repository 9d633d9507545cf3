# A pack written the way real loader/LoRA/prompt/ControlNet packs are (KJNodes, Easy-Use, WAS, efficiency-nodes,
# AnimateDiff-Evolved): module-level imports of comfy.sd, comfy.lora, comfy.sd1_clip, comfy.sdxl_clip,
# comfy.controlnet, comfy.clip_vision and comfy.ldm modules, classes subclassing theirs, NODE_CLASS_MAPPINGS.
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
