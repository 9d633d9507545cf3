"""ControlNet and T2I-Adapter files as a kind of model: their formats (sentinel keys), loaders and tiny files.

Merged by :mod:`hearth_sd.plugin` (``register_model_formats`` / ``register_model_loaders`` /
``register_tiny_models``). ComfyUI's ``controlnet`` folder kind reads ``models/controlnet`` and
``models/t2i_adapter``; every format below loads from it, through ControlNetLoader. Imported when plugins load:
no torch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.core.model_folders import TinyModel
from hearth.core.models.formats import ModelFormat

FOLDER = "controlnet"

MODEL_FORMATS = [
    ModelFormat("controlnet_ldm", {"control_model.zero_convs.0.0.weight": None,
                                   "control_model.input_hint_block.0.weight": None},
                "SD ControlNet, original single file (control_model.*)", prefixes=("control_model.",)),
    ModelFormat("controlnet_ldm_bare", {"zero_convs.0.0.weight": None, "input_hint_block.0.weight": None},
                "SD ControlNet, single file without prefix (control_v11*)"),
    ModelFormat("controlnet_diffusers", {"controlnet_cond_embedding.conv_in.weight": None,
                                         "controlnet_down_blocks.0.weight": None},
                "SD ControlNet, diffusers ControlNetModel layout"),
    ModelFormat("controlnet_union", {"controlnet_cond_embedding.conv_in.weight": None,
                                     "controlnet_down_blocks.0.weight": None,
                                     "control_add_embedding.linear_1.weight": None},
                "SDXL union ControlNet (controlnet-union-sdxl, diffusers layout)"),
    ModelFormat("control_lora", {"lora_controlnet": None, "input_hint_block.0.weight": None,
                                 "zero_convs.0.0.weight": None},
                "Control-LoRA (Stability AI's control-lora-*: a ControlNet as low-rank changes to the UNet)"),
    ModelFormat("t2i_adapter", {"conv_in.weight": None, "body.0.block1.weight": None, "body.0.block2.weight": None},
                "T2I-Adapter (full, SD1 or SDXL)"),
    ModelFormat("t2i_adapter_light", {"body.0.in_conv.weight": None, "body.0.out_conv.weight": None,
                                      "body.0.body.0.block1.weight": None},
                "T2I-Adapter (light, SD1)"),
    ModelFormat("t2i_adapter_diffusers", {"adapter.conv_in.weight": None,
                                          "adapter.body.0.resnets.0.block1.weight": None},
                "T2I-Adapter, diffusers T2IAdapter layout (full, SD1 or SDXL)"),
]


def load_controlnet_file(path: Path, model: Any = None, **_: Any) -> Any:
    """CONTROL_NET of a ControlNet or T2I-Adapter file (``model``: DiffControlNetLoader's base MODEL)."""
    from .controlnet_loader import load_control

    return load_control(path, model=model)


MODEL_LOADERS = {(FOLDER, fmt.name): load_controlnet_file for fmt in MODEL_FORMATS}


def _writer(kind: str, family: str):
    def write(path: Path, seed: int) -> None:
        from .controlnet_tiny import write_tiny

        write_tiny(kind, family, path, seed)

    return write


TINY_MODELS = {
    "controlnet-sd1": TinyModel(FOLDER, "tiny-controlnet-sd1.safetensors", _writer("controlnet", "sd1"),
                                "ControlNet for the tiny SD1 checkpoint (ControlNetLoader)"),
    "controlnet-sdxl": TinyModel(FOLDER, "tiny-controlnet-sdxl.safetensors", _writer("controlnet", "sdxl"),
                                 "ControlNet for the tiny SDXL checkpoint (ControlNetLoader)"),
    "t2i-adapter-sd1": TinyModel(FOLDER, "tiny-t2i-adapter-sd1.safetensors", _writer("t2i_adapter", "sd1"),
                                 "full T2I-Adapter for the tiny SD1 checkpoint (ControlNetLoader)"),
}
