"""Loading an SD checkpoint: detect the family, infer each part's config from key shapes, build and fill modules.

``load_checkpoint(path)`` returns a :class:`Checkpoint` with the diffusion model, the CLIP text side and the VAE.
Configs come from the weights themselves (channels, depths, widths), so a fine-tune, an inpainting model (9 input
channels) or a ``make-tiny`` file loads through the same code as the original; only attention head counts cannot
be read from shapes: they come from the family (SD1: 8 heads; the rest: 64-wide heads) or from the file's
``hearth.sd.config`` metadata, which the tiny files carry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hearth.core.models import (
    CheckpointHeader,
    ModelFormat,
    UnknownModelError,
    compute_dtype,
    default_device,
    detect,
    load_into,
    load_state_dict,
    read_header,
    strip_prefix,
)
from hearth.core.models.devices import as_device

from .clip_text import CLIPTextEncoder, TextEncoderConfig
from .embeddings import EmbeddingLibrary
from .families import ALL_FAMILIES, Family, TextEncoderSpec, get_family
from .formats import UNET_PREFIX, VAE_PREFIX, prediction_from_metadata, sd_formats
from .model import VAE, DiffusionModel
from .open_clip_text import OpenCLIPTextEncoder
from .ops import cast_layers, place, place_text_encoder
from .sampling import PREDICTIONS, ModelSampling
from .text_encoding import CLIP
from .unet import UNetConfig, UNetModel
from .vae import AutoencoderKL, VAEConfig

CONFIG_METADATA_KEY = "hearth.sd.config"
# Keys that some checkpoints carry and the modules rightly do not have: buffers older exports saved, and the VAE's
# training loss (LPIPS and discriminator) that some VAE files still hold.
_IGNORED = re.compile(r"(^|\.)(position_ids|attn_mask)$|^loss\.")


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (memory-mapped, in their stored dtype) and metadata of a checkpoint file, through ``hearth.core.models``."""
    return load_state_dict(path), dict(read_header(path).metadata)


def detect_format(source: Mapping[str, Any] | CheckpointHeader | str | Path) -> ModelFormat:
    """The SD format of a checkpoint (path, header, or keys to tensors/shapes), from this plugin's tables.

    :raises hearth.core.models.UnknownModelError: naming the file and the closest formats.
    """
    return detect(source, sd_formats())


def detect_family(source: Mapping[str, Any] | CheckpointHeader | str | Path) -> Family:
    """The :class:`Family` of a checkpoint; see :func:`detect_format`."""
    fmt = detect_format(source)
    if "family" not in fmt.extra:
        where = str(getattr(source, "path", source)) if not isinstance(source, Mapping) else "state dict"
        raise UnknownModelError(where, [(fmt, 1.0)], f"{fmt.name} is a part (load it with load_vae), not a checkpoint")
    return get_family(fmt.extra["family"])


def _count(keys: Iterable[str], pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in keys if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def encoder_shape(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The :class:`UNetConfig` fields that the encoder half of an LDM-layout UNet shows (prefix removed): what a
    UNet and a ControlNet (a copy of that half) read alike from ``input_blocks``, ``middle_block`` and
    ``label_emb``."""
    conv_in = sd["input_blocks.0.0.weight"]
    mc = conv_in.shape[0]
    mult, depth = [], []
    num_res = 0
    level_blocks = 0
    for k in range(1, _count(sd, r"input_blocks\.(\d+)\.")):
        if f"input_blocks.{k}.0.op.weight" in sd:
            num_res = num_res or level_blocks
            level_blocks = 0
            continue
        if level_blocks == 0:
            mult.append(sd[f"input_blocks.{k}.0.in_layers.2.weight"].shape[0] // mc)
            depth.append(_count(sd, rf"input_blocks\.{k}\.1\.transformer_blocks\.(\d+)\."))
        level_blocks += 1
    return {
        "in_channels": conv_in.shape[1],
        "model_channels": mc,
        "channel_mult": tuple(mult),
        "num_res_blocks": num_res or level_blocks,
        "transformer_depth": tuple(depth),
        "transformer_depth_middle": _count(sd, r"middle_block\.1\.transformer_blocks\.(\d+)\."),
        "adm_in_channels": sd["label_emb.0.0.weight"].shape[1] if "label_emb.0.0.weight" in sd else None,
    }


def unet_config_from_state_dict(sd: Mapping[str, torch.Tensor], family: Family, overrides: Mapping = {}) -> UNetConfig:
    """The UNet config that the shapes of a ``model.diffusion_model.*`` section (prefix removed) describe."""
    encoder = encoder_shape(sd)
    to_k = next(v for k, v in sd.items() if k.endswith("attn2.to_k.weight"))
    proj_in = next(v for k, v in sd.items() if k.endswith("proj_in.weight"))
    heads = {"num_heads": family.unet.num_heads, "num_head_channels": family.unet.num_head_channels}
    heads.update(overrides)
    return UNetConfig(
        **encoder,
        out_channels=sd["out.2.weight"].shape[0],
        context_dim=to_k.shape[1],
        use_linear_in_transformer=proj_in.ndim == 2,
        **heads,
    )


def vae_config_from_state_dict(sd: Mapping[str, torch.Tensor]) -> VAEConfig:
    """The VAE config that the shapes of a ``first_stage_model.*`` section (prefix removed) describe."""
    ch = sd["encoder.conv_in.weight"].shape[0]
    levels = _count(sd, r"encoder\.down\.(\d+)\.")
    return VAEConfig(
        in_channels=sd["encoder.conv_in.weight"].shape[1],
        out_channels=sd["decoder.conv_out.weight"].shape[0],
        ch=ch,
        ch_mult=tuple(sd[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] // ch for i in range(levels)),
        num_res_blocks=_count(sd, r"encoder\.down\.0\.block\.(\d+)\."),
        z_channels=sd["post_quant_conv.weight"].shape[0],
    )


def text_config_from_state_dict(
    sd: Mapping[str, torch.Tensor], spec: TextEncoderSpec, heads: int | None = None
) -> TextEncoderConfig:
    """The text encoder config that a section's shapes describe (layout per ``spec``; prefix removed)."""
    if spec.layout == "hf":
        tokens = sd["text_model.embeddings.token_embedding.weight"]
        positions = sd["text_model.embeddings.position_embedding.weight"].shape[0]
        layers = _count(sd, r"text_model\.encoder\.layers\.(\d+)\.")
        intermediate = sd["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0]
        projection = sd["text_projection.weight"].shape[0] if "text_projection.weight" in sd else None
    else:
        tokens = sd["token_embedding.weight"]
        positions = sd["positional_embedding"].shape[0]
        layers = _count(sd, r"transformer\.resblocks\.(\d+)\.")
        intermediate = sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        projection = sd["text_projection"].shape[1] if "text_projection" in sd else None
    width = tokens.shape[1]
    if heads is None:
        # Every released CLIP text tower uses 64-wide heads.
        heads = spec.config.heads if width == spec.config.width else max(1, width // 64)
    return replace(
        spec.config,
        vocab_size=tokens.shape[0],
        width=width,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        max_positions=positions,
        projection_dim=projection,
    )


def _fix_vae_attention(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Checkpoints re-saved from diffusers store the mid-block attention as linear [C, C]; ours are 1x1 convs.
    return {
        k: v[:, :, None, None] if ".attn_1." in k and k.endswith("weight") and v.ndim == 2 else v
        for k, v in sd.items()
    }


def _fix_text_projection(sd: dict[str, torch.Tensor], spec: TextEncoderSpec) -> dict[str, torch.Tensor]:
    # Some OpenCLIP exports store the projection as a Linear (``text_projection.weight``, [out, in]); open_clip
    # applies it as ``x @ text_projection`` ([in, out]).
    if spec.layout == "open_clip" and "text_projection.weight" in sd and "text_projection" not in sd:
        sd = dict(sd)
        sd["text_projection"] = sd.pop("text_projection.weight").t().contiguous()
    return sd


def build(module_type: type[nn.Module], config: Any, sd: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Make a module without initialising it (on the meta device) and adopt the checkpoint tensors directly.

    :raises hearth.core.models.CheckpointError: naming ``source`` and the keys that do not fit the inferred config.
    """
    with torch.device("meta"):
        module = module_type(config)
    sd = {k: v for k, v in sd.items() if not _IGNORED.search(k)}
    if "logit_scale" in module.state_dict() and "logit_scale" not in sd:
        sd["logit_scale"] = torch.tensor(4.6052)  # unused by text encoding; some exports drop it
    return load_into(module, sd, source=source).eval().requires_grad_(False)


@dataclass
class Checkpoint:
    """What ``CheckpointLoaderSimple`` outputs: ``(model, clip, vae)``, plus the family and the file's metadata."""

    family: Family
    model: DiffusionModel
    clip: CLIP
    vae: VAE
    metadata: dict[str, str]


def _prediction(family: Family, metadata: Mapping[str, str], prediction: str | None) -> str:
    prediction = prediction or prediction_from_metadata(metadata) or family.prediction
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    return prediction


def load_checkpoint(
    path: str | Path,
    *,
    prediction: str | None = None,
    embeddings: Iterable[str | Path] = (),
    load_device: str | torch.device | None = None,
    offload_device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Checkpoint:
    """Load an SD1/SD2/SDXL/SDXL-refiner checkpoint file into ready-to-run modules.

    :param prediction: ``"eps"`` or ``"v"``; by default the file's ``modelspec.prediction_type`` metadata, else the
        family's (v for SD2: keys cannot tell SD2-v from SD2-base, pass ``"eps"`` for the 512 base models).
    :param embeddings: folders searched for ``embedding:name`` in prompts.
    :param load_device: where the models will compute (default: ``hearth.core.models.default_device()``); it decides the
        compute dtype (``dtype`` overrides it for the UNet and text encoders).
    :param offload_device: where the weights are left (default the CPU, memory-mapped from the file); the model
        manager moves each module to ``load_device`` when it runs (wrap it in ``hearth.core.models.PatchedModel``).
    :param state_dict: tensors already read (by the model manager); the file is then only named in messages.
    """
    device = as_device(load_device) if load_device is not None else default_device()
    # A dtype the caller names is the text encoders' too; by default they follow ComfyUI's float16 storage rule.
    place_text = place if dtype is not None else place_text_encoder
    dtype = dtype or compute_dtype(device)
    vae_dtype = compute_dtype(device, (torch.bfloat16, torch.float32))
    offload = torch.device(offload_device)
    if state_dict is None:
        header = read_header(path)
        family = detect_family(header)  # from the header alone: an unknown file costs no tensor read
        state_dict, metadata = load_state_dict(path), header.metadata
    else:
        family = detect_family(state_dict)
    metadata = dict(metadata or {})
    overrides = json.loads(metadata.get(CONFIG_METADATA_KEY, "{}"))

    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    unet_cfg = unet_config_from_state_dict(unet_sd, family, overrides.get("unet", {}))
    unet = place(build(UNetModel, unet_cfg, unet_sd, f"{path} (UNet)"), offload, dtype)

    vae_sd = _fix_vae_attention(strip_prefix(state_dict, VAE_PREFIX))
    vae = build(AutoencoderKL, vae_config_from_state_dict(vae_sd), vae_sd, f"{path} (VAE)")
    # Never float16 for the VAE: SDXL's overflows in it. bfloat16 where the device runs it well, else float32.
    vae = place(vae, offload, vae_dtype)

    encoders = {}
    for spec in family.text_encoders:
        text_sd = _fix_text_projection(strip_prefix(state_dict, spec.prefix), spec)
        config = text_config_from_state_dict(text_sd, spec, overrides.get("text_heads", {}).get(spec.name))
        module_type = CLIPTextEncoder if spec.layout == "hf" else OpenCLIPTextEncoder
        encoders[spec.name] = place_text(
            build(module_type, config, text_sd, f"{path} (text encoder {spec.name})"), offload, dtype
        )

    clip = CLIP(family, encoders, embeddings=EmbeddingLibrary(embeddings), vocab_near=path)
    sampling = ModelSampling(prediction=_prediction(family, metadata, prediction))
    return Checkpoint(family, DiffusionModel(unet, family, sampling), clip, VAE(vae), metadata)


def load_vae(
    path: str | Path, load_device: str | torch.device | None = None, offload_device: str | torch.device = "cpu"
) -> VAE:
    """A standalone VAE file (``VAELoader``): keys without prefix, or with ``first_stage_model.``."""
    sd, _ = read_state_dict(path)
    if any(k.startswith(VAE_PREFIX) for k in sd):
        sd = strip_prefix(sd, VAE_PREFIX)
    sd = _fix_vae_attention({k: v for k, v in sd.items() if not k.startswith("model_ema.")})
    vae = build(AutoencoderKL, vae_config_from_state_dict(sd), sd, f"{path} (VAE)")
    device = as_device(load_device) if load_device is not None else default_device()
    return VAE(place(vae, torch.device(offload_device), compute_dtype(device, (torch.bfloat16, torch.float32))))


# -- a UNet on its own (UNETLoader, diffusion_models/) -----------------------------------------------------------

# Where a UNet-only file keeps the UNet: bare (as ComfyUI saves diffusion_models files) or a checkpoint's prefix.
UNET_ONLY_PREFIXES = (UNET_PREFIX, "")
FAMILY_METADATA_KEY = "hearth.sd.family"  # tiny files say their family; real ones are told apart by shapes
# Weight dtypes UNETLoader offers (and torch's names, which comfy.sd passes from model_options["dtype"]): fp8
# stores the matrices in 8 bits, the layers cast them as they run.
UNET_WEIGHT_DTYPES = {"default": None, "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e4m3fn_fast": torch.float8_e4m3fn,
                      "fp8_e5m2": torch.float8_e5m2, "float8_e4m3fn": torch.float8_e4m3fn,
                      "float8_e5m2": torch.float8_e5m2}


def unet_prefix(keys: Iterable[str]) -> str:
    """Which of :data:`UNET_ONLY_PREFIXES` a file's UNet keys sit under (``input_blocks.0.0.weight`` found)."""
    keys = set(keys)
    for prefix in UNET_ONLY_PREFIXES:
        if prefix + "input_blocks.0.0.weight" in keys:
            return prefix
    raise UnknownModelError("state dict", [], "no input_blocks.0.0.weight, bare or under " + UNET_PREFIX)


def unet_family(shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str] | None = None) -> Family:
    """The SD family of a UNet alone (keys without prefix), as ComfyUI's detection tells it from shapes:
    an ADM input (``label_emb``) is SDXL, its refiner when the cross-attention width is 1280; otherwise a linear
    ``proj_in`` or 1024-wide context is SD2, the rest SD1. ``hearth.sd.family`` metadata (tiny files) decides first.
    """
    named = (metadata or {}).get(FAMILY_METADATA_KEY)
    if named in ALL_FAMILIES:
        return get_family(named)
    context = next((shape[1] for key, shape in shapes.items() if key.endswith("attn2.to_k.weight")), None)
    if "label_emb.0.0.weight" in shapes:
        if context == 1024:  # SD2's text width with an ADM input: SD2.1-unclip
            return get_family("sd2_unclip")
        return get_family("sdxl_refiner" if context == 1280 else "sdxl")
    proj_in = next((shape for key, shape in shapes.items() if key.endswith("proj_in.weight")), None)
    if context == 1024 or (proj_in is not None and len(proj_in) == 2):
        return get_family("sd2")
    return get_family("sd1")


def load_unet(
    path: str | Path,
    *,
    prediction: str | None = None,
    weight_dtype: str = "default",
    load_device: str | torch.device | None = None,
    offload_device: str | torch.device = "cpu",
) -> DiffusionModel:
    """An SD1/SD2/SDXL UNet on its own (a ``diffusion_models/`` file: keys bare or under ``model.diffusion_model.``,
    or a whole checkpoint, of which only the UNet is read) as a :class:`DiffusionModel`.

    The family comes from :func:`unet_family`, the config from the shapes and the ``hearth.sd.config`` metadata
    (heads), the prediction from ``prediction``, the ModelSpec metadata, then the family (v for SD2, as for
    checkpoints: Hearth does not probe the UNet as ComfyUI does). ``weight_dtype``: one of
    :data:`UNET_WEIGHT_DTYPES` (fp8 stores the matrices in 8 bits; they compute in the device's dtype).
    Not read: diffusers' ``UNet2DConditionModel`` layout (``down_blocks.…``), which Hearth's loaders do not convert.
    """
    if weight_dtype not in UNET_WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype {weight_dtype!r}: choose one of {', '.join(UNET_WEIGHT_DTYPES)}")
    device = as_device(load_device) if load_device is not None else default_device()
    header = read_header(path)
    try:
        prefix = unet_prefix(header.shapes)
    except UnknownModelError:
        raise UnknownModelError(str(path), [], "not an SD UNet: no input_blocks.0.0.weight, bare or under "
                                + UNET_PREFIX) from None
    shapes = {k[len(prefix):]: tuple(v) for k, v in header.shapes.items() if k.startswith(prefix)}
    metadata = dict(header.metadata)
    family = unet_family(shapes, metadata)
    state = load_state_dict(path, prefix=prefix)
    if prefix:
        state = strip_prefix(state, prefix)
    store = UNET_WEIGHT_DTYPES[weight_dtype]
    if store is not None:
        # Matrices and kernels only, as ComfyUI stores them: norms and biases keep their precision.
        state = {k: v.to(store) if v.is_floating_point() and v.ndim >= 2 and k.endswith(".weight") else v
                 for k, v in state.items()}
    overrides = json.loads(metadata.get(CONFIG_METADATA_KEY, "{}"))
    config = unet_config_from_state_dict(state, family, overrides.get("unet", {}))
    dtype = compute_dtype(device)
    unet = build(UNetModel, config, state, f"{path} (UNet)")
    unet = cast_layers(unet.to(torch.device(offload_device)), dtype) if store is not None \
        else place(unet, torch.device(offload_device), dtype)
    sampling = ModelSampling(prediction=_prediction(family, metadata, prediction))
    return DiffusionModel(unet, family, sampling)
