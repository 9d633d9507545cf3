"""Tiny LoRAs for tests and demos: kohya-format files, random low-rank weights, for a given (tiny) SD checkpoint.

The LoRA is built from the base checkpoint's key names and shapes only (its header), so it fits that checkpoint
by construction: rank-4 ``lora_up`` / ``lora_down`` pairs with ``alpha = 2`` on the first transformer block's
attention projections of every UNet attention block on the input side and in the middle, and on the first
layer's attention and MLP of each text encoder. Names are spelled as kohya's sd-scripts writes them: diffusers
module paths for SD1/SD2 UNets, LDM paths for SDXL's, Hugging Face paths for every text encoder.
``unmatched_key=True`` adds one module no SD model has, to see the unmatched-key warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from hearth.core.models import read_header, write_safetensors

from .names import TE, TE1, TE2, res_blocks_per_level, text_encoder_hf_names, unet_diffusers_path

RANK = 4
ALPHA = 2.0
UNMATCHED_MODULE = "lora_unet_not_a_block_of_any_sd_model"
UNET_PREFIX = "model.diffusion_model."
# Where each checkpoint layout keeps its text encoders (the LDM / SGM file layouts), and which kohya part each is.
TEXT_ENCODER_LAYOUTS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("conditioner.embedders.0.transformer.", TE1), ("conditioner.embedders.1.model.", TE2)),  # SDXL
    (("conditioner.embedders.0.model.", TE),),  # SDXL refiner
    (("cond_stage_model.transformer.", TE),),  # SD1
    (("cond_stage_model.model.", TE),),  # SD2
)
_ATTENTION = re.compile(r"(input_blocks\.\d+|middle_block)\.1\.transformer_blocks\.0\.attn[12]\."
                        r"(to_q|to_k|to_v|to_out\.0)\.weight")
_TEXT_LAYERS = re.compile(r"text_model\.encoder\.layers\.0\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])")


def _under(shapes: Mapping[str, Sequence[int]], prefix: str) -> dict[str, Sequence[int]]:
    return {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}


def _modules(shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, int]]:
    """kohya module name -> (out, in) of the matrix it adapts, for a checkpoint with these shapes."""
    unet = _under(shapes, UNET_PREFIX)
    if not unet:
        raise ValueError("no UNet (model.diffusion_model.*) in the base checkpoint: not an SD checkpoint")
    sdxl = any(k.startswith("label_emb.") for k in unet)
    per_level = res_blocks_per_level(unet)
    modules: dict[str, tuple[int, int]] = {}
    for key, shape in unet.items():
        if _ATTENTION.fullmatch(key):
            path = key[:-7] if sdxl else unet_diffusers_path(key[:-7], per_level)
            modules["lora_unet_" + path.replace(".", "_")] = (shape[0], shape[1])
    layout = next((lay for lay in TEXT_ENCODER_LAYOUTS if all(_under(shapes, p) for p, _ in lay)), ())
    for prefix, part in layout:
        encoder = _under(shapes, prefix)
        for hf, (key, rows, _) in text_encoder_hf_names(encoder).items():
            if _TEXT_LAYERS.fullmatch(hf):
                out = rows[1] - rows[0] if rows else encoder[key][0]
                modules[f"lora_{part}_" + hf.replace(".", "_")] = (out, encoder[key][1])
    return modules


def tiny_lora_state_dict(shapes: Mapping[str, Sequence[int]], seed: int = 0,
                         unmatched_key: bool = False) -> dict[str, torch.Tensor]:
    """The tensors (float16) of a tiny kohya LoRA for a checkpoint whose keys have these shapes."""
    modules = _modules(shapes)
    if unmatched_key:
        modules[UNMATCHED_MODULE] = (8, 8)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name in sorted(modules):
        out, inp = modules[name]
        # Large enough to change an image visibly at strength 1, small enough to keep the tiny model stable.
        tensors[f"{name}.lora_up.weight"] = (torch.randn(out, RANK, generator=gen) * 0.2).half()
        tensors[f"{name}.lora_down.weight"] = (torch.randn(RANK, inp, generator=gen) * 0.2).half()
        tensors[f"{name}.alpha"] = torch.tensor(ALPHA, dtype=torch.float16)
    return tensors


def write_tiny_lora(shapes: Mapping[str, Sequence[int]], out: str | Path, seed: int = 0, *,
                    unmatched_key: bool = False, base_name: str = "") -> Path:
    """Write a tiny LoRA for a checkpoint with these key shapes to ``out``; the same inputs give the same bytes."""
    out = Path(out)
    tensors = tiny_lora_state_dict(shapes, seed, unmatched_key)
    metadata = {"ss_network_module": "networks.lora", "ss_network_dim": str(RANK), "ss_network_alpha": str(ALPHA),
                "hearth.lora.tiny": "random weights, for tests and demos only"}
    if base_name:
        metadata["hearth.lora.base"] = base_name
    out.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(tensors, out, metadata)
    return out


def make_tiny_lora(base: str | Path, out: str | Path, seed: int = 0, *, unmatched_key: bool = False) -> Path:
    """Write a tiny kohya LoRA fitting the checkpoint ``base`` (read for its header only) to ``out``.

    :raises hearth.core.models.CheckpointError: naming ``base`` when it is not a readable checkpoint.
    :raises ValueError: when ``base`` has no SD UNet.
    """
    header = read_header(base)
    return write_tiny_lora(header.shapes, out, seed, unmatched_key=unmatched_key, base_name=Path(base).name)
