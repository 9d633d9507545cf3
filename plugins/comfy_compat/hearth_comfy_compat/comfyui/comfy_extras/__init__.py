"""ComfyUI's ``comfy_extras`` package: its ``nodes_*`` modules export Hearth's nodes under ComfyUI's class names."""
