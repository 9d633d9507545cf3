"""ComfyUI's ``comfy.ldm.models``: the autoencoder model classes."""
