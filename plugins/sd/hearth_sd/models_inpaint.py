"""Inpainting and InstructPix2Pix checkpoints as tiny models (``make-tiny sd1-inpaint``, ``sd1-ip2p``...).

Such a checkpoint has the layout of its family (the same format detects it); only the UNet's first convolution
takes more channels: 9 for inpainting (the latent, the mask and the masked image's latent), 8 for InstructPix2Pix
(the latent and the source image's latent); see :mod:`hearth_sd.inpaint`.
Imported when plugins load: no torch here.
"""

from __future__ import annotations

from pathlib import Path

from hearth.core.model_folders import TinyModel


def _writer(family: str, in_channels: int):
    def write(path: Path, seed: int) -> None:
        from .tiny import make_tiny_checkpoint

        make_tiny_checkpoint(family, path, seed, in_channels=in_channels)

    return write


TINY_MODELS = {
    "sd1-inpaint": TinyModel("checkpoints", "tiny-sd1-inpaint.safetensors", _writer("sd1", 9),
                             "SD1.x inpainting checkpoint (9-channel UNet)"),
    "sdxl-inpaint": TinyModel("checkpoints", "tiny-sdxl-inpaint.safetensors", _writer("sdxl", 9),
                              "SDXL inpainting checkpoint (9-channel UNet)"),
    "sd1-ip2p": TinyModel("checkpoints", "tiny-sd1-ip2p.safetensors", _writer("sd1", 8),
                          "SD1.5 InstructPix2Pix checkpoint (8-channel UNet)"),
}
