"""ComfyUI's ``comfy.k_diffusion`` package (k-diffusion's sampler signatures over Hearth's samplers)."""
