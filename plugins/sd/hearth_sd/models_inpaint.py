"""Inpainting checkpoints as tiny models: SD1.x and SDXL with a 9-channel UNet (``make-tiny sd1-inpaint``).

An inpainting checkpoint has the layout of its family (the same format detects it); only the UNet's first
convolution takes 9 channels: the latent, the mask and the masked image's latent (:mod:`hearth_sd.inpaint`).
Imported when plugins load: no torch here.
"""

from __future__ import annotations

from pathlib import Path

from hearth.core.model_folders import TinyModel


def _writer(family: str):
    def write(path: Path, seed: int) -> None:
        from .tiny import make_tiny_checkpoint

        make_tiny_checkpoint(family, path, seed, inpaint=True)

    return write


TINY_MODELS = {
    "sd1-inpaint": TinyModel("checkpoints", "tiny-sd1-inpaint.safetensors", _writer("sd1"),
                             "SD1.x inpainting checkpoint (9-channel UNet)"),
    "sdxl-inpaint": TinyModel("checkpoints", "tiny-sdxl-inpaint.safetensors", _writer("sdxl"),
                              "SDXL inpainting checkpoint (9-channel UNet)"),
}
