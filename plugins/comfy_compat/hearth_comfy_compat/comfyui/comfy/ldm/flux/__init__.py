"""ComfyUI's ``comfy.ldm.flux``: the Flux architecture's pure helpers (rotary embeddings)."""
