"""Tests of the Stable Diffusion plugin (plugins/sd)."""
