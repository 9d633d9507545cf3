"""Hearth's Stable Diffusion plugin: SD1.x, SD2.x and SDXL models, CLIP text encoding and the VAE."""
