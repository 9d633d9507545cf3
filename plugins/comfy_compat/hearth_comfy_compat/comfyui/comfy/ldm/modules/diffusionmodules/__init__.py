"""ComfyUI's ``comfy.ldm.modules.diffusionmodules``: the UNet's blocks and helpers."""
