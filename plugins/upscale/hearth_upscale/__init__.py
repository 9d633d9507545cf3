"""Upscale models for Hearth: ESRGAN (RRDBNet), Real-ESRGAN and its compact SRVGG network, tiled as ComfyUI tiles."""
