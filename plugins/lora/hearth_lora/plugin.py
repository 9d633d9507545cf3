"""The ``hearth`` entry point of the LoRA plugin: the LoraLoader nodes and tiny LoRAs for ``make-tiny``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hearth.core.hookspecs import hookimpl
from hearth.core.model_folders import TinyModel

from .nodes import NODES

# make-tiny name -> (the tiny SD checkpoint family the LoRA is made for, its file name under loras/).
TINY_LORAS = {"lora": ("sd1", "tiny-lora-sd1.safetensors"), "lora-sdxl": ("sdxl", "tiny-lora-sdxl.safetensors")}


@hookimpl
def register_nodes():
    return dict(NODES)


def _tiny_lora_writer(family: str):
    def write(path: Path, seed: int) -> None:
        import torch
        from hearth_sd.tiny import tiny_checkpoint_name, tiny_state_dict

        from .tiny import write_tiny_lora

        # Only the base's key shapes matter: build it on the meta device, no memory, no random numbers drawn.
        with torch.device("meta"):
            tensors, _ = tiny_state_dict(family, seed)
        write_tiny_lora({k: tuple(v.shape) for k, v in tensors.items()}, path, seed,
                        base_name=tiny_checkpoint_name(family))

    return write


@hookimpl
def register_tiny_models():
    # The LoRAs fit the SD plugin's tiny checkpoints; without that plugin there is nothing for them to fit.
    if importlib.util.find_spec("hearth_sd") is None:
        return None
    return {name: TinyModel("loras", filename, _tiny_lora_writer(family),
                            f"kohya LoRA for the tiny {family} checkpoint (LoraLoader)", write_for=_write_for)
            for name, (family, filename) in TINY_LORAS.items()}


def _write_for(base: Path, path: Path, seed: int) -> None:
    from .tiny import make_tiny_lora

    make_tiny_lora(base, path, seed)
