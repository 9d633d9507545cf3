"""ComfyUI's ``comfy.ldm.modules.distributions``: the VAE's latent distribution."""
