"""ComfyUI's ``comfy.ldm``: model architecture code; the parts packs reuse that are pure torch live here."""
