"""ComfyUI's ``comfy_api`` package: its modules served from files here (the versioned node API is in SERVED)."""
