"""ComfyUI's ``comfy.taesd``: the tiny autoencoders used for previews (TAESD; TAEHV stays a recorded stand-in)."""
