"""Loading checkpoint, VAE and text-encoder files once per process, as MODEL / CLIP / VAE values for nodes.

The core's generic loader nodes reach these through ``register_model_loaders`` (:mod:`hearth_sd.plugin`). Loads go
through the core's load cache (:func:`hearth.core.models.load_once`): two loader nodes naming one file share one
set of weights while some node output (:mod:`hearth_sd.sd_model` values, holding the record as ``source``) uses
them; when the executor's cache drops the last, the weights are freed and the next load reads the file again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from hearth.core.models import (
    Loaded,
    PatchedModel,
    compute_dtype,
    default_device,
    file_identity,
    load_once,
    load_state_dict,
    read_header,
    strip_prefix,
)

from .checkpoint import (
    CONFIG_METADATA_KEY,
    build,
    load_checkpoint,
    load_unet,
    load_vae,
    text_config_from_state_dict,
)
from .clip_text import CLIPTextEncoder
from .embeddings import EmbeddingLibrary
from .families import FAMILIES
from .open_clip_text import OpenCLIPTextEncoder
from .ops import place_text_encoder
from .sd_model import SDVAE, SDClip, SDModel
from .text_encoding import CLIP

# Prefixes a standalone text-encoder file may carry around the layouts the encoders read.
_TEXT_PREFIXES = ("cond_stage_model.transformer.", "cond_stage_model.model.", "transformer.", "")


def checkpoint(path: str | Path, embeddings: Iterable[str | Path] = (),
               prediction: str | None = None) -> tuple[SDModel, SDClip, SDVAE]:
    """A checkpoint file as CheckpointLoaderSimple outputs it: ``(MODEL, CLIP, VAE)``."""
    path = Path(path)
    embeddings = tuple(str(e) for e in embeddings)
    device = default_device()

    def make() -> Loaded:
        ckpt = load_checkpoint(path, prediction=prediction, embeddings=embeddings, load_device=device)
        unet = PatchedModel(ckpt.model.unet, name=path.name, load_device=device,
                            memory_estimate=ckpt.model.memory_required)
        text = {name: PatchedModel(module, name=f"{path.name} (text {name})", load_device=device)
                for name, module in ckpt.clip.encoders.items()}
        vae = PatchedModel(ckpt.vae.model, name=f"{path.name} (VAE)", load_device=device)
        return Loaded(path, checkpoint=ckpt, unet=unet, text=text, vae=vae)

    record = load_once("checkpoint", path, make, embeddings, prediction, str(device))
    ckpt = record.checkpoint
    return (SDModel(ckpt.model, record.unet, record), SDClip(ckpt.clip, record.text, record),
            SDVAE(ckpt.vae, record.vae, record))


def unet(path: str | Path, weight_dtype: str = "default", device: str | None = None,
         prediction: str | None = None) -> SDModel:
    """An SD1/SD2/SDXL UNet file on its own (UNETLoader; or a checkpoint's UNet alone) as a MODEL, which samples as
    the MODEL of a checkpoint holding the same UNet does (see :func:`hearth_sd.checkpoint.load_unet`)."""
    path = Path(path)
    load_device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        model = load_unet(path, prediction=prediction, weight_dtype=weight_dtype, load_device=load_device)
        patcher = PatchedModel(model.unet, name=path.name, load_device=load_device,
                               memory_estimate=model.memory_required)
        return Loaded(path, model=model, unet=patcher)

    record = load_once("unet", path, make, weight_dtype, prediction, str(load_device))
    return SDModel(record.model, record.unet, record)


def vae(path: str | Path) -> SDVAE:
    """A standalone VAE file as a VAE value (VAELoader)."""
    path = Path(path)
    device = default_device()

    def make() -> Loaded:
        loaded = load_vae(path, load_device=device)
        return Loaded(path, vae=loaded, patcher=PatchedModel(loaded.model, name=path.name, load_device=device))

    record = load_once("vae", path, make, str(device))
    return SDVAE(record.vae, record.patcher, record)


def text_encoder(path: str | Path, embeddings: Iterable[str | Path] = (), device: str | None = None) -> SDClip:
    """A standalone text-encoder file (CLIPLoader, type ``stable_diffusion``): CLIP-L (HF layout) gives an SD1
    CLIP, OpenCLIP ViT-H (open_clip layout) an SD2 one. ``device="cpu"`` keeps it computing on the CPU.

    :raises ValueError: naming the file when it holds neither.
    """
    path = Path(path)
    embeddings = tuple(str(e) for e in embeddings)
    device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        header = read_header(path)
        keys = set(header.tensors)
        for prefix in _TEXT_PREFIXES:
            if prefix + "text_model.embeddings.token_embedding.weight" in keys:
                family, module_type = FAMILIES["sd1"], CLIPTextEncoder
                break
            if prefix + "token_embedding.weight" in keys and prefix + "transformer.resblocks.0.ln_1.weight" in keys:
                family, module_type = FAMILIES["sd2"], OpenCLIPTextEncoder
                break
        else:
            raise ValueError(f"{path}: not a CLIP-L or OpenCLIP ViT-H text encoder (no token embedding under the "
                             f"usual keys); CLIPLoader type stable_diffusion loads SD1 and SD2 text encoders")
        spec = family.text_encoders[0]
        state = strip_prefix(load_state_dict(path), prefix) if prefix else load_state_dict(path)
        heads = json.loads(header.metadata.get(CONFIG_METADATA_KEY, "{}")).get("text_heads", {}).get(spec.name)
        config = text_config_from_state_dict(state, spec, heads)
        module = place_text_encoder(build(module_type, config, state, f"{path} (text encoder)"),
                                    torch.device("cpu"), compute_dtype(device))
        clip = CLIP(family, {spec.name: module}, embeddings=EmbeddingLibrary(embeddings), vocab_near=path)
        return Loaded(path, clip=clip, text={spec.name: PatchedModel(module, name=path.name, load_device=device)})

    record = load_once("text_encoder", path, make, embeddings, str(device))
    return SDClip(record.clip, record.text, record)



# -- two text-encoder files as one SDXL CLIP (DualCLIPLoader type "sdxl") -------------------------------------------

# A CLIP-G file in Hugging Face's layout (text_encoders/clip_g.safetensors as SD3 and SDXL users have it) renamed to
# the OpenCLIP layout Hearth's bigG encoder reads: per layer, q/k/v are packed into one in_proj.
_HF_TO_OPEN_CLIP = (
    ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
    ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
    ("text_model.final_layer_norm.", "ln_final."),
)
_HF_LAYER = (("self_attn.out_proj.", "attn.out_proj."), ("layer_norm1.", "ln_1."), ("layer_norm2.", "ln_2."),
             ("mlp.fc1.", "mlp.c_fc."), ("mlp.fc2.", "mlp.c_proj."))
# Prefixes a CLIP-G file may carry: bare, a checkpoint's, or ComfyUI's CLIPSave / SD3 layouts.
_G_PREFIXES = ("", "conditioner.embedders.1.model.", "conditioner.embedders.0.model.", "model.",
               "clip_g.transformer.", "clip_g.", "transformer.", "text_encoders.clip_g.transformer.")


def hf_to_open_clip(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A CLIP text tower in Hugging Face's key layout as OpenCLIP's (``transformer.resblocks.N...``)."""
    out: dict[str, torch.Tensor] = {}
    packed: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        for old, new in _HF_TO_OPEN_CLIP:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            if key.startswith("text_model.encoder.layers."):
                index, _, rest = key[len("text_model.encoder.layers."):].partition(".")
                block = f"transformer.resblocks.{index}."
                if rest.startswith("self_attn.") and rest.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                    _, proj, kind = rest.split(".")
                    packed.setdefault(f"{block}attn.in_proj_{kind}", {})[proj[0]] = value
                    continue
                for old, new in _HF_LAYER:
                    if rest.startswith(old):
                        out[block + new + rest[len(old):]] = value
                        break
            elif key == "text_projection.weight":
                out["text_projection"] = value.t().contiguous()  # a Linear's [out, in]; OpenCLIP multiplies x @ P
            elif key == "text_projection":
                out[key] = value
    for key, parts in packed.items():
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"CLIP-G file: {key} lacks some of q_proj/k_proj/v_proj")
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def text_encoder_kind(path: str | Path) -> str:
    """``"l"`` (CLIP-L), ``"g"`` (OpenCLIP bigG) or ``"h"`` (OpenCLIP ViT-H) for a standalone text encoder file,
    from its layout and widths (1280 is bigG, 1024 ViT-H, 768 CLIP-L; a tiny test file says it in metadata).

    :raises ValueError: naming the file when it is not a CLIP text encoder.
    """
    header = read_header(path)
    named = header.metadata.get(TEXT_KIND_METADATA_KEY)
    if named:
        return named
    for key, shape in header.shapes.items():
        if key.endswith("text_model.embeddings.token_embedding.weight"):
            width = shape[1]
            projected = any(k.endswith("text_projection.weight") for k in header.shapes)
            return "g" if width == 1280 or (width not in (768, 1024) and projected) else "l"
        if key.endswith("token_embedding.weight"):
            return "g" if shape[1] == 1280 else "h"
    raise ValueError(f"{path}: not a CLIP text encoder (no token embedding under any known key)")


TEXT_KIND_METADATA_KEY = "hearth.sd.text_encoder"  # "l" / "g": what a tiny file is (shapes cannot tell)


def _clip_g_state(path: Path) -> dict[str, torch.Tensor]:
    """A CLIP-G file's tensors in the OpenCLIP layout, whatever its prefix and layout."""
    state = load_state_dict(path)
    for prefix in _G_PREFIXES:
        if prefix + "text_model.embeddings.token_embedding.weight" in state:
            return hf_to_open_clip(strip_prefix(state, prefix) if prefix else state)
        if prefix + "token_embedding.weight" in state:
            state = strip_prefix(state, prefix) if prefix else dict(state)
            if "text_projection.weight" in state and "text_projection" not in state:
                state["text_projection"] = state.pop("text_projection.weight").t().contiguous()
            return state
    raise ValueError(f"{path}: no CLIP-G token embedding under the usual keys")


def _clip_l_state(path: Path) -> dict[str, torch.Tensor]:
    state = load_state_dict(path)
    for prefix in _TEXT_PREFIXES + ("clip_l.transformer.", "conditioner.embedders.0.transformer.",
                                    "text_encoders.clip_l.transformer."):
        if prefix + "text_model.embeddings.token_embedding.weight" in state:
            return strip_prefix(state, prefix) if prefix else dict(state)
    raise ValueError(f"{path}: no CLIP-L token embedding under the usual keys")


def sdxl_text_encoders(path_l: str | Path, path_g: str | Path, embeddings: Iterable[str | Path] = (),
                       device: str | None = None) -> SDClip:
    """An SDXL CLIP from a CLIP-L file and a CLIP-G file (DualCLIPLoader type ``sdxl``); it encodes as the CLIP of
    an SDXL checkpoint holding the same two encoders does. ``device="cpu"`` keeps it computing on the CPU."""
    path_l, path_g = Path(path_l), Path(path_g)
    embeddings = tuple(str(e) for e in embeddings)
    load_device = torch.device(device) if device is not None else default_device()
    family = FAMILIES["sdxl"]

    def make() -> Loaded:
        modules = {}
        for spec in family.text_encoders:
            path = path_l if spec.name == "l" else path_g
            state = _clip_l_state(path) if spec.name == "l" else _clip_g_state(path)
            heads = json.loads(read_header(path).metadata.get(CONFIG_METADATA_KEY, "{}")).get("text_heads", {})
            config = text_config_from_state_dict(state, spec, heads.get(spec.name))
            module_type = CLIPTextEncoder if spec.layout == "hf" else OpenCLIPTextEncoder
            modules[spec.name] = place_text_encoder(
                build(module_type, config, state, f"{path} (text encoder {spec.name})"), torch.device("cpu"),
                compute_dtype(load_device))
        clip = CLIP(family, modules, embeddings=EmbeddingLibrary(embeddings), vocab_near=path_l)
        text = {name: PatchedModel(module, name=(path_l if name == "l" else path_g).name, load_device=load_device)
                for name, module in modules.items()}
        return Loaded(path_l, clip=clip, text=text)

    record = load_once("sdxl_text_encoders", path_l, make, file_identity(path_g), embeddings, str(load_device))
    return SDClip(record.clip, record.text, record)


def open_clip_to_hf(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An OpenCLIP text tower (bigG or ViT-H) in Hugging Face's key layout, the one ComfyUI's CLIPSave writes and
    its text-encoder files use: the inverse of :func:`hf_to_open_clip`."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        for hf, ours in _HF_TO_OPEN_CLIP:
            if key.startswith(ours):
                out[hf + key[len(ours):]] = value
                break
        else:
            if key.startswith("transformer.resblocks."):
                index, _, rest = key[len("transformer.resblocks."):].partition(".")
                layer = f"text_model.encoder.layers.{index}."
                if rest.startswith("attn.in_proj_"):
                    kind = rest[len("attn.in_proj_"):]
                    for name, part in zip(("q", "k", "v"), value.chunk(3, dim=0), strict=True):
                        out[f"{layer}self_attn.{name}_proj.{kind}"] = part.contiguous()
                    continue
                for hf, ours in _HF_LAYER:
                    if rest.startswith(ours):
                        out[layer + hf + rest[len(ours):]] = value
                        break
            elif key == "text_projection":
                out["text_projection.weight"] = value.t().contiguous()
    return out
