"""ComfyUI's ``comfy.text_encoders``: the text encoders of newer model families (their classes, where packs test for them)."""
