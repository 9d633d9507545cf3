"""Reading ControlNet, T2I-Adapter and Control-LoRA files into CONTROL_NET values (ControlNetLoader and its diff form).

As ComfyUI's ``load_controlnet``: a Control-LoRA (:mod:`hearth_sd.controlnet_lora`) is kept as its file's weights
until a MODEL evaluates with it, a file with ControlNet keys (any layout of :mod:`hearth_sd.controlnet_layouts`) is
a ControlNet, anything else is tried as a T2I-Adapter. The family (SD1, SD2, SDXL) comes from the shapes as for
a UNet alone (:func:`hearth_sd.checkpoint.unet_family`; tiny files name it in metadata), the attention heads from
the family or the file's ``hearth.sd.config`` metadata. A file whose name ends in ``_shuffle`` (``_shuffle_fp16``)
averages its residuals over the image, as ComfyUI decides for the shuffle ControlNet.

Loads go through the core's load cache, so two loader nodes naming one file share one set of weights.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hearth.core.models import (
    CheckpointError,
    Loaded,
    PatchedModel,
    compute_dtype,
    default_device,
    load_once,
    load_state_dict,
    read_header,
)

from .checkpoint import CONFIG_METADATA_KEY, FAMILY_METADATA_KEY, build, unet_family
from .controlnet import ControlBase, ControlNet, T2IAdapter
from .controlnet_layouts import DIFFERENCE_KEY, LDM_PREFIX, ControlNetLayoutError, layout_of, to_ldm
from .controlnet_lora import MARKER as LORA_MARKER
from .controlnet_lora import ControlLora
from .controlnet_model import ControlNetModel, controlnet_config
from .ops import place
from .t2i_adapter import build_adapter, convert_diffusers_adapter, is_t2i_adapter


def _estimate(module: ControlNetModel):
    """Bytes a ControlNet forward needs beyond its weights: the encoder half of the UNet's estimate."""
    c = module.config.unet

    def estimate(input_shape: tuple[int, ...] | None, dtype: torch.dtype | None) -> int:
        b, _, h, w = input_shape or (2, c.in_channels, 128, 128)
        size = torch.finfo(dtype or torch.float16).bits // 8
        features = sum((c.num_res_blocks + 1) * c.model_channels * m * (h >> lvl) * (w >> lvl)
                       for lvl, m in enumerate(c.channel_mult))
        return int(1.5 * b * size * (features + 16 * c.model_channels * h * w))

    return estimate


def _is_shuffle(path: Path) -> bool:
    return path.stem.endswith(("_shuffle", "_shuffle_fp16"))


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        header = read_header(path)
        return load_state_dict(path), dict(header.metadata)
    except CheckpointError as exc:
        raise CheckpointError(f"ControlNetLoader: {exc}; download the ControlNet again") from None


def _heads(family: Any, metadata: Mapping[str, str]) -> dict[str, int | None]:
    heads = {"num_heads": family.unet.num_heads, "num_head_channels": family.unet.num_head_channels}
    heads.update(json.loads(metadata.get(CONFIG_METADATA_KEY, "{}")).get("unet", {}))
    return heads


def _add_base_weights(sd: dict[str, torch.Tensor], model: Any) -> dict[str, torch.Tensor]:
    """A "diff" ControlNet's weights plus its base UNet's (ComfyUI's ``difference`` files)."""
    if model is None:
        return sd
    base = model.patcher.module.state_dict()
    return {key: value + base[key].to(value) if key in base and base[key].shape == value.shape else value
            for key, value in sd.items()}


def controlnet_from_state_dict(sd: Mapping[str, torch.Tensor], metadata: Mapping[str, str], path: Path,
                               device: torch.device, model: Any = None) -> tuple[ControlNetModel, str]:
    """The ControlNet network of a state dict in any ControlNet layout, and its family name."""
    difference = DIFFERENCE_KEY in sd
    try:
        ldm = to_ldm(sd, path.name)
    except ControlNetLayoutError as exc:
        raise ControlNetLayoutError(f"ControlNetLoader: {exc}") from None
    if difference:
        ldm = _add_base_weights(ldm, model)
    shapes = {k: tuple(v.shape) for k, v in ldm.items()}
    family = unet_family(shapes, metadata)
    config = controlnet_config(ldm, _heads(family, metadata))
    module = build(ControlNetModel, config, ldm, f"{path} (ControlNet)")
    return place(module, torch.device("cpu"), compute_dtype(device)), family.name


def adapter_from_state_dict(sd: Mapping[str, torch.Tensor], metadata: Mapping[str, str], path: Path,
                            device: torch.device) -> tuple[torch.nn.Module, str]:
    """The T2I-Adapter network of a state dict, and the family it was made for (SDXL or SD1)."""
    if "adapter.body.0.resnets.0.block1.weight" in sd:
        sd = convert_diffusers_adapter(sd)
    module = build(lambda _: build_adapter(sd), None, sd, f"{path} (T2I-Adapter)")
    xl = getattr(module, "xl", False)
    family = metadata.get(FAMILY_METADATA_KEY) or ("sdxl" if xl else "sd1")  # tiny files name theirs
    return place(module, torch.device("cpu"), compute_dtype(device)), family


def load_control(path: str | Path, model: Any = None) -> ControlBase:
    """A ControlNet, T2I-Adapter or Control-LoRA file as a CONTROL_NET value (ControlNetLoader; with ``model``,
    DiffControlNetLoader, which adds the MODEL's UNet to a "diff" ControlNet's weights).

    :raises ControlNetLayoutError: naming the file when it is none of them.
    :raises hearth.core.models.CheckpointError: naming the file when it is corrupt or its shapes do not fit.
    """
    path = Path(path)
    device = default_device()

    def make() -> Loaded:
        sd, metadata = _read(path)
        if LORA_MARKER in sd:
            family = "sdxl" if any(k.startswith("label_emb.") for k in sd) else "sd1"
            return Loaded(path, weights={k: v for k, v in sd.items() if k != LORA_MARKER}, family=family,
                          kind="control_lora", built={})
        if layout_of(sd) or DIFFERENCE_KEY in sd or any(k.startswith(LDM_PREFIX) for k in sd):
            module, family = controlnet_from_state_dict(sd, metadata, path, device, model)
            patcher = PatchedModel(module, name=path.name, load_device=device, memory_estimate=_estimate(module))
            return Loaded(path, patcher=patcher, family=family, kind="controlnet")
        if not is_t2i_adapter(sd):
            raise ControlNetLayoutError(
                f"ControlNetLoader: {path.name} is neither a ControlNet (no zero_convs / controlnet_cond_embedding "
                f"keys) nor a T2I-Adapter (no conv_in / body keys): put only ControlNet and T2I-Adapter files in "
                f"models/controlnet")
        module, family = adapter_from_state_dict(sd, metadata, path, device)
        return Loaded(path, patcher=PatchedModel(module, name=path.name, load_device=device), family=family,
                      kind="t2i_adapter")

    diff_model = () if model is None else (id(model.patcher.weights),)
    record = load_once("controlnet", path, make, str(device), *diff_model)
    if record.kind == "control_lora":
        return ControlLora(record.weights, record.family, path.name, record)
    if record.kind == "t2i_adapter":
        return T2IAdapter(record.patcher, record.family, record)
    return ControlNet(record.patcher, record.family, record, global_average_pooling=_is_shuffle(path))
