"""ComfyUI's ``comfy_execution`` package: the execution helpers packs import, over Hearth's executor."""
