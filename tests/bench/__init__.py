"""Tests of the bench scripts that measure Hearth against outside references (templates, ComfyUI's source)."""
