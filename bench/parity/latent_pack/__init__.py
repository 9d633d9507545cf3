"""A one-node ComfyUI-format pack the parity harness loads into both servers: save a LATENT's float tensor.

Hearth has no SaveLatent node; the same small node on both sides keeps the latent comparison symmetric. It writes
``samples`` as float32 under ``latent_tensor`` in a .safetensors file at the absolute path it is given. Loaded into
ComfyUI, it also gives that ComfyUI the later upstream fixes Hearth follows (:mod:`.upstream_fixes`).
"""

from __future__ import annotations

import os

from .upstream_fixes import apply_all

apply_all()


class HearthParitySaveLatent:
    """Write ``samples["samples"]`` (float32) to ``path``; an output node with no outputs."""

    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True
    CATEGORY = "hearth_parity"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "path": ("STRING", {"default": ""})}}

    def save(self, samples, path):
        import safetensors.torch

        if not os.path.isabs(path):
            raise ValueError(f"HearthParitySaveLatent: path must be absolute, got {path!r}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tensor = samples["samples"].detach().float().cpu().contiguous()
        safetensors.torch.save_file({"latent_tensor": tensor}, path)
        return {}


NODE_CLASS_MAPPINGS = {"HearthParitySaveLatent": HearthParitySaveLatent}
NODE_DISPLAY_NAME_MAPPINGS = {"HearthParitySaveLatent": "Save Latent (parity harness)"}
