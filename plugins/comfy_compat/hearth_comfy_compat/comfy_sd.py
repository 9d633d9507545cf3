"""ComfyUI's ``comfy.sd`` module: loading checkpoints, text encoders and VAEs as MODEL / CLIP / VAE values, and
putting a LoRA state dict on a MODEL and CLIP.

Backed by the SD plugin's loaders (``hearth_sd.loaders``: one load per file per process, shared with the loader
nodes) and the LoRA plugin (``hearth_lora``: the same key matching and report as LoraLoader). ``VAE`` and
``CLIP`` are the SD plugin's value types for ``isinstance`` checks; ``VAE(sd=state_dict)`` builds a VAE from
tensors, as packs that bundle their own VAE do.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["CLIP", "VAE", "CLIPType", "load_checkpoint_guess_config", "load_clip", "load_lora_for_models"]


def _sd() -> Any:
    try:
        import hearth_sd.loaders
    except ImportError as exc:
        raise RuntimeError("comfy.sd needs Hearth's SD plugin (hearth-sd): install it with "
                           "`pip install -e plugins/sd`") from exc
    return hearth_sd


def _folders(embedding_directory: str | os.PathLike[str] | Iterable[Any] | None) -> list[str]:
    if embedding_directory is None:
        return []
    if isinstance(embedding_directory, (str, os.PathLike)):
        return [str(embedding_directory)]
    return [str(folder) for folder in embedding_directory]


class CLIPType(enum.Enum):
    """ComfyUI's text-encoder kinds; Hearth's SD plugin loads ``STABLE_DIFFUSION`` (CLIP-L or OpenCLIP ViT-H)."""

    STABLE_DIFFUSION = 1
    STABLE_CASCADE = 2
    SD3 = 3
    STABLE_AUDIO = 4
    HUNYUAN_DIT = 5
    FLUX = 6
    MOCHI = 7
    LTXV = 8
    HUNYUAN_VIDEO = 9
    PIXART = 10
    COSMOS = 11
    LUMINA2 = 12
    WAN = 13
    HIDREAM = 14
    CHROMA = 15
    ACE = 16
    OMNIGEN2 = 17
    QWEN_IMAGE = 18


def load_checkpoint_guess_config(ckpt_path: str | os.PathLike[str], output_vae: bool = True,
                                 output_clip: bool = True, output_clipvision: bool = False,
                                 embedding_directory: Any = None, output_model: bool = True,
                                 model_options: Mapping[str, Any] | None = None,
                                 te_model_options: Mapping[str, Any] | None = None) -> tuple[Any, Any, Any, Any]:
    """``(model, clip, vae, clipvision)`` of a checkpoint whose family is detected from its keys.

    Parts not asked for are ``None``; ``clipvision`` is always ``None`` (SD checkpoints carry none).
    """
    model, clip, vae = _sd().loaders.checkpoint(ckpt_path, embeddings=_folders(embedding_directory))
    return (model if output_model else None, clip if output_clip else None, vae if output_vae else None, None)


def load_clip(ckpt_paths: list[str] | str, embedding_directory: Any = None,
              clip_type: CLIPType = CLIPType.STABLE_DIFFUSION, model_options: Mapping[str, Any] | None = None) -> Any:
    """A CLIP from one text-encoder file (CLIPLoader's ``stable_diffusion`` type)."""
    paths = [ckpt_paths] if isinstance(ckpt_paths, (str, os.PathLike)) else list(ckpt_paths)
    if clip_type != CLIPType.STABLE_DIFFUSION or len(paths) != 1:
        kind = getattr(clip_type, "name", clip_type)
        raise ValueError(f"comfy.sd.load_clip: Hearth loads one SD1/SD2 text encoder (CLIPType.STABLE_DIFFUSION), "
                         f"not {len(paths)} file(s) of type {kind}")
    device = (model_options or {}).get("load_device")
    return _sd().loaders.text_encoder(paths[0], _folders(embedding_directory),
                                      device=None if device is None else str(device))


def load_lora_for_models(model: Any, clip: Any, lora: Mapping[str, Any], strength_model: float,
                         strength_clip: float) -> tuple[Any, Any]:
    """Clones of ``model`` and ``clip`` with the LoRA state dict ``lora`` patched on (either may be None).

    Keys that fit neither are logged, and shown on the node while it runs, as LoraLoader reports them.
    """
    try:
        from hearth_lora.apply import load_lora_for_models as apply
        from hearth_lora.apply import warn
        from hearth_lora.formats import parse_lora
    except ImportError as exc:
        raise RuntimeError("comfy.sd.load_lora_for_models needs Hearth's LoRA plugin (hearth-lora): install it "
                           "with `pip install -e plugins/lora`") from exc
    parsed = parse_lora(lora)
    if not parsed.adapters:
        raise ValueError(f"comfy.sd.load_lora_for_models: no tensor of a LoRA format Hearth reads (kohya, "
                         f"diffusers/PEFT, LyCORIS); first keys: {', '.join(list(lora)[:3])}")
    new_model, new_clip, report = apply(model, clip, parsed, strength_model, strength_clip, "a LoRA state dict")
    warn(report)
    return new_model, new_clip


class _HearthValueType(type):
    """``isinstance(x, comfy.sd.VAE)`` is true for the SD plugin's value of that kind."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, getattr(_sd().sd_model, cls._hearth_type))


class VAE(metaclass=_HearthValueType):
    """``comfy.sd.VAE(sd=state_dict)``: an SD-family VAE (AutoencoderKL) built from its tensors."""

    _hearth_type = "SDVAE"

    def __new__(cls, sd: Mapping[str, Any] | None = None, device: Any = None, config: Any = None,
                dtype: Any = None, metadata: Any = None) -> Any:
        if sd is None or config is not None:
            raise ValueError("comfy.sd.VAE: Hearth builds a VAE from its state dict only (VAE(sd=...)); load a file "
                             "with VAELoader or comfy.sd.load_checkpoint_guess_config")
        return _vae_from_state_dict(dict(sd), device)


class CLIP(metaclass=_HearthValueType):
    """The SD plugin's CLIP value, for ``isinstance``; CLIPs come from files (``load_clip``, checkpoints)."""

    _hearth_type = "SDClip"

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("comfy.sd.CLIP(...): Hearth builds CLIP values from files only; use comfy.sd.load_clip or "
                         "comfy.sd.load_checkpoint_guess_config")


def _vae_from_state_dict(sd: dict[str, Any], device: Any) -> Any:
    import torch

    from hearth.core.models import PatchedModel, compute_dtype, default_device, strip_prefix

    hearth_sd = _sd()
    from hearth_sd import checkpoint
    from hearth_sd.formats import VAE_PREFIX
    from hearth_sd.model import VAE as VAEModel
    from hearth_sd.ops import place
    from hearth_sd.vae import AutoencoderKL

    if any(k.startswith(VAE_PREFIX) for k in sd):
        sd = strip_prefix(sd, VAE_PREFIX)
    sd = checkpoint._fix_vae_attention({k: v for k, v in sd.items() if not k.startswith("model_ema.")})
    load_device = torch.device(device) if device is not None else default_device()
    module = checkpoint.build(AutoencoderKL, checkpoint.vae_config_from_state_dict(sd), sd, "a VAE state dict")
    module = place(module, torch.device("cpu"), compute_dtype(load_device, (torch.bfloat16, torch.float32)))
    patcher = PatchedModel(module, name="VAE from a state dict", load_device=load_device)
    return hearth_sd.sd_model.SDVAE(VAEModel(module), patcher)
