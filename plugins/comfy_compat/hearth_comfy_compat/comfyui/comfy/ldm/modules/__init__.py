"""ComfyUI's ``comfy.ldm.modules``: attention and the UNet's building blocks."""
