"""ComfyUI's ``comfy`` package: its modules implemented here, one file each."""
