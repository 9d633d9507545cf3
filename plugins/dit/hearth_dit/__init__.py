"""Diffusion transformers for Hearth: Flux.1 and Z-Image Turbo, their text encoders and their autoencoder."""
