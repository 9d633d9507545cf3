"""Shared setup of the compatibility tests that run packs on a model: a tiny SD1 checkpoint and LoRA, and small
prompt builders (the Runtime with every sample pack loaded is conftest's ``packs_runtime``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hearth.core.context import Folders
from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager

PACKS = Path(__file__).parent / "packs"
CHECKPOINT = "tiny-sd1.safetensors"
LORA = "tiny-lora-sd1.safetensors"


def make_models(folder: Path) -> ModelFolders:
    from hearth_lora.tiny import make_tiny_lora
    from hearth_sd.tiny import make_tiny_checkpoint

    checkpoint = make_tiny_checkpoint("sd1", folder / "checkpoints" / CHECKPOINT)
    make_tiny_lora(checkpoint, folder / "loras" / LORA)
    return ModelFolders(folder)


def executor_for(pm: PluginManager, tmp_path: Path) -> Executor:
    return Executor(pm.nodes(), folders=Folders(tmp_path / "output", tmp_path / "input", tmp_path / "temp"),
                    plugins=pm)


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def txt2img_parts(size: int = 64) -> dict[str, Any]:
    """Checkpoint (1), positive (2), negative (3) and an empty latent (4) of ``size`` pixels."""
    return {
        "1": node("CheckpointLoaderSimple", ckpt_name=CHECKPOINT),
        "2": node("CLIPTextEncode", clip=["1", 1], text="a red cat"),
        "3": node("CLIPTextEncode", clip=["1", 1], text="blurry"),
        "4": node("EmptyLatentImage", width=size, height=size, batch_size=1),
    }


def sampling_inputs(model: Any = ("1", 0), **overrides: Any) -> dict[str, Any]:
    inputs = {"model": list(model), "seed": 7, "steps": 2, "cfg": 4.0, "sampler_name": "euler",
              "scheduler": "normal", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]}
    return inputs | overrides


def preview_pixels(result: Any, node_id: str, folders: Folders) -> np.ndarray:
    """The pixels of the first image a preview or save node of ``result`` wrote, as uint8 ``[H, W, 3]``."""
    image = result.outputs[node_id]["images"][0]
    root = folders.temp if image["type"] == "temp" else folders.output
    with Image.open(root / image["subfolder"] / image["filename"]) as opened:
        return np.asarray(opened.convert("RGB"))
