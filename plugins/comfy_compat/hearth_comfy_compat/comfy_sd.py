"""ComfyUI's ``comfy.sd`` module: loading checkpoints, text encoders and VAEs as MODEL / CLIP / VAE values, and
putting a LoRA state dict on a MODEL and CLIP.

Files load through :func:`hearth.core.models.load_model_file`, which detects a file's family and hands it to the
loader a plugin registered for it (``register_model_loaders``): one load per file per process, shared with the
loader nodes. LoRA goes through the ``lora_for_models`` hook (the LoRA plugin's key matching and report, as
LoraLoader). ``isinstance(x, comfy.sd.VAE)`` / ``comfy.sd.CLIP`` test for the VAE / CLIP interface;
``VAE(sd=state_dict)`` builds a VAE from tensors, as packs that bundle their own VAE do.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from typing import Any

from hearth_comfy_compat import services

__all__ = ["CLIP", "VAE", "CLIPType", "load_checkpoint_guess_config", "load_clip", "load_lora_for_models"]


def _load(kind: str, path: str | os.PathLike[str], **options: Any) -> Any:
    from hearth.core.models import load_model_file

    return load_model_file(kind, path, plugins=services.plugins(), **options)


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
    model, clip, vae = _load("checkpoints", ckpt_path, embeddings=_folders(embedding_directory))
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
    return _load("text_encoders", paths[0], type="stable_diffusion", embeddings=_folders(embedding_directory),
                 device=None if device is None else str(device))


def load_lora_for_models(model: Any, clip: Any, lora: Mapping[str, Any], strength_model: float,
                         strength_clip: float) -> tuple[Any, Any]:
    """Clones of ``model`` and ``clip`` with the LoRA state dict ``lora`` patched on (either may be None).

    Keys that fit neither are logged, and shown on the node while it runs, as LoraLoader reports them.
    """
    lent = next((v for v in (model, clip) if getattr(type(v), "HEARTH_LENT", False)), None)
    if lent is not None:  # in a pack host: Hearth's process patches its own values (host_side's proxies)
        return lent.hearth_lora(model, clip, dict(lora), strength_model, strength_clip)
    try:
        return services.lora_for_models(model, clip, lora, strength_model, strength_clip)
    except ValueError as exc:
        raise ValueError(f"comfy.sd.load_lora_for_models: {exc}") from exc


class _HearthValueType(type):
    """``isinstance(x, comfy.sd.VAE)`` is true for any value offering that kind's interface, whichever plugin
    made it (the methods ComfyUI's own class has and nodes call)."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return all(callable(getattr(obj, method, None)) for method in cls._hearth_interface)


class VAE(metaclass=_HearthValueType):
    """``comfy.sd.VAE(sd=state_dict)``: a VAE built from its tensors by the plugin that loads VAE files of its
    family (an SD-family AutoencoderKL: ``first_stage_model.`` keys or a standalone VAE's)."""

    _hearth_interface = ("encode", "decode")

    def __new__(cls, sd: Mapping[str, Any] | None = None, device: Any = None, config: Any = None,
                dtype: Any = None, metadata: Any = None) -> Any:
        if sd is None or config is not None:
            raise ValueError("comfy.sd.VAE: Hearth builds a VAE from its state dict only (VAE(sd=...)); load a file "
                             "with VAELoader or comfy.sd.load_checkpoint_guess_config")
        return _vae_from_state_dict(dict(sd))


class CLIP(metaclass=_HearthValueType):
    """A CLIP value, for ``isinstance``; CLIPs come from files (``load_clip``, checkpoints)."""

    _hearth_interface = ("tokenize", "encode_from_tokens")

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("comfy.sd.CLIP(...): Hearth builds CLIP values from files only; use comfy.sd.load_clip or "
                         "comfy.sd.load_checkpoint_guess_config")


# A checkpoint's VAE keys: a VAE file keeps them without it.
_CHECKPOINT_VAE_PREFIX = "first_stage_model."


def _vae_from_state_dict(sd: dict[str, Any]) -> Any:
    # Families load VAEs from files (detection reads a file's header), so the tensors are written once to a
    # private file and loaded through the same VAE loader as VAELoader; the loaded weights no longer need it.
    import tempfile
    from pathlib import Path

    from hearth.core.models import strip_prefix
    from hearth.core.models.loading import write_safetensors

    if any(k.startswith(_CHECKPOINT_VAE_PREFIX) for k in sd):
        sd = strip_prefix(sd, _CHECKPOINT_VAE_PREFIX)
    sd = {k: v.contiguous() for k, v in sd.items() if not k.startswith("model_ema.")}
    with tempfile.TemporaryDirectory(prefix="hearth-vae-") as folder:
        path = write_safetensors(sd, Path(folder) / "vae-from-state-dict.safetensors")
        return _load("vae", path)
