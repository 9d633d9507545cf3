"""The trained miniature SD1.x "shapes" model and its LoRA, offered by ``comfy models make-tiny`` beside the random ones.

The files ship in ``hearth_sd/trained/models/`` (made by ``python -m hearth_sd.trained.train``, see the model card
there); ``make-tiny all`` copies them into a models folder, so example workflows and the demo load them by name
with CheckpointLoaderSimple and LoraLoader. The seed does not apply: they are trained weights, always the same bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from hearth.core.model_folders import TinyModel

SHIPPED = Path(__file__).parent / "trained" / "models"
CHECKPOINT = "hearth-shapes-sd1.safetensors"
LORA = "hearth-shapes-outlined-lora.safetensors"


def _copier(relative: str) -> Callable[[Path, int], None]:
    def write(path: Path, seed: int = 0) -> None:
        source = SHIPPED / relative
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing: reinstall hearth-sd, or make it with "
                                    "`python -m hearth_sd.trained.train`")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
    return write


TINY_MODELS = {
    "shapes-sd1": TinyModel("checkpoints", CHECKPOINT, _copier(f"checkpoints/{CHECKPOINT}"),
                            "trained SD1.x on coloured shapes ('a red circle'), 64x64: real pictures"),
    "shapes-lora": TinyModel("loras", LORA, _copier(f"loras/{LORA}"),
                             "trained kohya LoRA for shapes-sd1: outlined (hollow) shapes"),
}
