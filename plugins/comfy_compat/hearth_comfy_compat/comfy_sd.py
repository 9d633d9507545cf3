"""ComfyUI's ``comfy.sd`` module: loading checkpoints, diffusion models, text encoders and VAEs (from files or state
dicts) as MODEL / CLIP / VAE values, and putting a LoRA state dict on a MODEL and CLIP.

Files load through :func:`hearth.core.models.load_model_file`, which detects a file's family and hands it to the
loader a plugin registered for it (``register_model_loaders``): one load per file per process, shared with the
loader nodes. A state dict (``load_state_dict_guess_config``, ``load_diffusion_model_state_dict``, ``VAE(sd=...)``)
is written once to a private file and loaded the same way, except TAESD tensors, which ``VAE(sd=...)`` builds into
:class:`TAESDVAE` itself. A family no installed plugin loads fails naming the file, its detected format and the
loaders there are; ``model_options["custom_operations"]`` (a pack's own layers, GGUF's) is refused by name. LoRA
goes through the ``lora_for_models`` hook (the LoRA plugin's key matching and report, as LoraLoader).

``CLIP`` and ``VAE`` are classes a pack can construct, subclass and test with ``isinstance``: ``isinstance(x,
comfy.sd.VAE)`` is true for any value offering the VAE interface, whichever plugin made it; ``VAE(sd=...)`` returns
Hearth's VAE value; an instance of a pack's subclass wraps that value and hands on every attribute it does not
define itself. What differs from ComfyUI: Hearth builds values from weights only, never from ComfyUI's model
classes (``CLIP(target=ClipTarget)``), and a checkpoint's yaml config only says its prediction type (``eps``/``v``);
the family comes from the weights.
"""

from __future__ import annotations

import enum
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from hearth.core.models import ModelValue, PatchedModel
from hearth_comfy_compat import hook, services

__all__ = ["CLIP", "VAE", "CLIPType", "TEModel", "load_checkpoint", "load_checkpoint_guess_config", "load_clip",
           "load_diffusion_model", "load_diffusion_model_state_dict", "load_lora_for_models",
           "load_state_dict_guess_config", "load_text_encoder_state_dicts", "load_unet", "load_unet_state_dict"]


def lacking(name: str, detail: str) -> Exception:
    """The error for a ComfyUI behaviour Hearth lacks (``name``: its ComfyUI name), recorded for the pack that
    asked, so ``comfy plugins`` lists it (:func:`hearth_comfy_compat.hook.lacking`)."""
    return hook.lacking(name, detail)


def _load(kind: str, path: str | os.PathLike[str], **options: Any) -> Any:
    from hearth.core.models import load_model_file

    return load_model_file(kind, path, plugins=services.plugins(), **options)


def _load_tensors(kind: str, sd: Mapping[str, Any], metadata: Mapping[str, str] | None = None,
                  **options: Any) -> Any:
    # Families detect and load files (detection reads a file's header), so the tensors are written once to a
    # private file and loaded as the loader nodes load files; the loaded weights no longer need the file.
    from hearth.core.models.loading import write_safetensors

    sd = {k: v.contiguous() for k, v in sd.items() if hasattr(v, "contiguous")}
    with tempfile.TemporaryDirectory(prefix="hearth-state-dict-") as folder:
        path = write_safetensors(sd, Path(folder) / f"{kind}-from-state-dict.safetensors",
                                 metadata=dict(metadata) if metadata else None)
        return _load(kind, path, **options)


def _folders(embedding_directory: str | os.PathLike[str] | Iterable[Any] | None) -> list[str]:
    if embedding_directory is None:
        return []
    if isinstance(embedding_directory, (str, os.PathLike)):
        return [str(embedding_directory)]
    return [str(folder) for folder in embedding_directory]


def _plain(name: str, model_options: Mapping[str, Any] | None) -> None:
    """Refuse ``model_options`` that ask ComfyUI's model classes to build their layers with a pack's operations
    (GGUF's quantised ``GGMLOps``): Hearth's families build their own layers, and loading quantised tensors as
    plain weights would be wrong, not slow."""
    ops = (model_options or {}).get("custom_operations")
    if ops is not None:
        raise lacking(f"comfy.sd.{name}(model_options={{'custom_operations': ...}})",
                      f"Hearth's model families build their own layers and cannot use {getattr(ops, '__name__', ops)!s}"
                      f" (quantised weights such as GGUF's need their plugin's own loader)")


def _device(model_options: Mapping[str, Any] | None) -> str | None:
    device = (model_options or {}).get("load_device")
    return None if device is None else str(device)


class CLIPType(enum.Enum):
    """ComfyUI's text-encoder kinds. Each is loaded by the plugin that registers a text-encoder loader of the
    same name in lower case (Hearth's SD plugin: ``stable_diffusion``; its video plugin: ``wan``)."""

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
    HUNYUAN_IMAGE = 19
    HUNYUAN_VIDEO_15 = 20
    OVIS = 21
    KANDINSKY5 = 22
    KANDINSKY5_IMAGE = 23
    NEWBIE = 24
    FLUX2 = 25


class TEModel(enum.Enum):
    """ComfyUI's text-encoder architectures, as its ``detect_te_model`` names them (for packs that compare with
    them; Hearth's loaders detect a file's family themselves)."""

    CLIP_L = 1
    CLIP_H = 2
    CLIP_G = 3
    T5_XXL = 4
    T5_XL = 5
    T5_BASE = 6
    LLAMA3_8 = 7
    T5_XXL_OLD = 8
    GEMMA_2_2B = 9
    QWEN25_3B = 10
    QWEN25_7B = 11
    BYT5_SMALL_GLYPH = 12
    GEMMA_3_4B = 13
    MISTRAL3_24B = 14
    MISTRAL3_24B_PRUNED_FLUX2 = 15
    QWEN3_4B = 16
    QWEN3_2B = 17
    GEMMA_3_12B = 18
    JINA_CLIP_2 = 19
    QWEN3_8B = 20


def _clip_type_name(clip_type: Any) -> str:
    return getattr(clip_type, "name", str(clip_type)).lower()


# -- checkpoints -------------------------------------------------------------------------------------------------

def load_checkpoint_guess_config(ckpt_path: str | os.PathLike[str], output_vae: bool = True,
                                 output_clip: bool = True, output_clipvision: bool = False,
                                 embedding_directory: Any = None, output_model: bool = True,
                                 model_options: Mapping[str, Any] | None = None,
                                 te_model_options: Mapping[str, Any] | None = None) -> tuple[Any, Any, Any, Any]:
    """``(model, clip, vae, clipvision)`` of a checkpoint whose family is detected from its keys.

    Parts not asked for are ``None``; ``clipvision`` is always ``None`` (Hearth has no CLIP vision model yet).
    """
    _plain("load_checkpoint_guess_config", model_options)
    _plain("load_checkpoint_guess_config", te_model_options)
    model, clip, vae = _load("checkpoints", ckpt_path, embeddings=_folders(embedding_directory))
    return (model if output_model else None, clip if output_clip else None, vae if output_vae else None, None)


def load_state_dict_guess_config(sd: Mapping[str, Any], output_vae: bool = True, output_clip: bool = True,
                                 output_clipvision: bool = False, embedding_directory: Any = None,
                                 output_model: bool = True, model_options: Mapping[str, Any] | None = None,
                                 te_model_options: Mapping[str, Any] | None = None,
                                 metadata: Mapping[str, str] | None = None) -> tuple[Any, Any, Any, Any] | None:
    """:func:`load_checkpoint_guess_config` for a checkpoint's tensors already in memory."""
    _plain("load_state_dict_guess_config", model_options)
    _plain("load_state_dict_guess_config", te_model_options)
    model, clip, vae = _load_tensors("checkpoints", sd, metadata, embeddings=_folders(embedding_directory))
    return (model if output_model else None, clip if output_clip else None, vae if output_vae else None, None)


_PARAMETERIZATION = re.compile(r"^\s*parameterization\s*:\s*[\"']?(\w+)", re.MULTILINE)


def _parameterization(config: Any) -> str | None:
    """The ``parameterization`` of an LDM config (a parsed dict, found at any depth), or None."""
    if isinstance(config, Mapping):
        if "parameterization" in config:
            return str(config["parameterization"])
        return next((found for value in config.values() if (found := _parameterization(value)) is not None), None)
    return None


def load_checkpoint(config_path: str | os.PathLike[str] | None = None,
                    ckpt_path: str | os.PathLike[str] | None = None, output_vae: bool = True,
                    output_clip: bool = True, embedding_directory: Any = None,
                    state_dict: Mapping[str, Any] | None = None, config: Any = None) -> tuple[Any, Any, Any]:
    """``(model, clip, vae)`` of a checkpoint loaded with its original yaml config (CheckpointLoader).

    The family comes from the weights, as everywhere in Hearth; the config (a file, or ``config`` parsed) says only
    the prediction type: ``parameterization: v`` loads the model as v-prediction, otherwise the file decides.
    """
    prediction = _parameterization(config)
    if prediction is None and config_path is not None and Path(config_path).is_file():
        found = _PARAMETERIZATION.search(Path(config_path).read_text(encoding="utf-8", errors="replace"))
        prediction = found.group(1) if found else None
    options: dict[str, Any] = {"embeddings": _folders(embedding_directory)}
    if prediction == "v":
        options["prediction"] = "v"
    if state_dict is not None:
        model, clip, vae = _load_tensors("checkpoints", state_dict, **options)
    elif ckpt_path is not None:
        model, clip, vae = _load("checkpoints", ckpt_path, **options)
    else:
        raise ValueError("comfy.sd.load_checkpoint: give ckpt_path (or state_dict)")
    return model, clip if output_clip else None, vae if output_vae else None


# -- diffusion models ------------------------------------------------------------------------------------------

def load_diffusion_model(unet_path: str | os.PathLike[str], model_options: Mapping[str, Any] | None = None) -> Any:
    """The MODEL of a standalone diffusion-model file (UNETLoader), by the plugin of its detected family.

    ``model_options["dtype"]`` (a torch fp8 dtype) asks for the matching ``weight_dtype`` where the family has it.
    """
    _plain("load_diffusion_model", model_options)
    return _load("diffusion_models", unet_path, **_weight_dtype(model_options))


def load_diffusion_model_state_dict(sd: Mapping[str, Any], model_options: Mapping[str, Any] | None = None,
                                    metadata: Mapping[str, str] | None = None) -> Any:
    """:func:`load_diffusion_model` for tensors already in memory (a pack's own file reader)."""
    _plain("load_diffusion_model_state_dict", model_options)
    return _load_tensors("diffusion_models", sd, metadata, **_weight_dtype(model_options))


def load_unet(unet_path: str | os.PathLike[str], dtype: Any = None) -> Any:
    """ComfyUI's older name of :func:`load_diffusion_model`."""
    return load_diffusion_model(unet_path, {"dtype": dtype} if dtype is not None else None)


def load_unet_state_dict(sd: Mapping[str, Any], dtype: Any = None) -> Any:
    """ComfyUI's older name of :func:`load_diffusion_model_state_dict`."""
    return load_diffusion_model_state_dict(sd, {"dtype": dtype} if dtype is not None else None)


def _weight_dtype(model_options: Mapping[str, Any] | None) -> dict[str, Any]:
    dtype = (model_options or {}).get("dtype")
    name = str(dtype).removeprefix("torch.") if dtype is not None else ""
    return {"weight_dtype": name} if name.startswith("float8") else {}


# -- text encoders ---------------------------------------------------------------------------------------------

def load_clip(ckpt_paths: list[str] | str, embedding_directory: Any = None,
              clip_type: CLIPType = CLIPType.STABLE_DIFFUSION, model_options: Mapping[str, Any] | None = None) -> Any:
    """A CLIP from a text-encoder file, loaded by the plugin registering ``clip_type``'s loader (CLIPLoader).

    Hearth's loaders take one file; ComfyUI's dual and triple loaders (several files) are not supported.
    """
    _plain("load_clip", model_options)
    paths = [ckpt_paths] if isinstance(ckpt_paths, (str, os.PathLike)) else list(ckpt_paths)
    if len(paths) != 1:
        raise ValueError(f"comfy.sd.load_clip: Hearth loads one text-encoder file per CLIP, not {len(paths)} "
                         f"(type {_clip_type_name(clip_type)})")
    options: dict[str, Any] = {"type": _clip_type_name(clip_type), "device": _device(model_options)}
    if options["type"] == "stable_diffusion":
        options["embeddings"] = _folders(embedding_directory)
    return _load("text_encoders", paths[0], **options)


def load_text_encoder_state_dicts(state_dicts: list[Mapping[str, Any]] | None = None,
                                  embedding_directory: Any = None,
                                  clip_type: CLIPType = CLIPType.STABLE_DIFFUSION,
                                  model_options: Mapping[str, Any] | None = None) -> Any:
    """:func:`load_clip` for text-encoder tensors already in memory (one state dict)."""
    _plain("load_text_encoder_state_dicts", model_options)
    state_dicts = list(state_dicts or [])
    if len(state_dicts) != 1:
        raise ValueError(f"comfy.sd.load_text_encoder_state_dicts: Hearth loads one text encoder per CLIP, not "
                         f"{len(state_dicts)} (type {_clip_type_name(clip_type)})")
    options: dict[str, Any] = {"type": _clip_type_name(clip_type), "device": _device(model_options)}
    if options["type"] == "stable_diffusion":
        options["embeddings"] = _folders(embedding_directory)
    return _load_tensors("text_encoders", state_dicts[0], **options)


# -- LoRA ------------------------------------------------------------------------------------------------------

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


# -- the CLIP and VAE classes ----------------------------------------------------------------------------------

class _HearthValueType(type):
    """``isinstance(x, comfy.sd.VAE)`` is true for any value offering that kind's interface, whichever plugin
    made it (the methods ComfyUI's own class has and nodes call); a pack's subclass tests as classes do."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        return cls.__dict__.get("_hearth_base", False) and all(
            callable(getattr(obj, method, None)) for method in cls._hearth_interface)


class _Wrapper:
    """An instance of ``CLIP``/``VAE`` itself (a pack's subclass, ``CLIP(no_init=True)``): Hearth's value it
    wraps answers every attribute the instance does not have."""

    def __getattr__(self, name: str) -> Any:
        value = self.__dict__.get("hearth_value")
        if value is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(value, name)


class VAE(_Wrapper, metaclass=_HearthValueType):
    """``comfy.sd.VAE(sd=state_dict)``: a VAE built from its tensors by the plugin that loads VAE files of their
    family (an SD-family AutoencoderKL: ``first_stage_model.`` keys or a standalone VAE's). ``device`` and
    ``dtype`` are the model manager's business in Hearth and are not taken."""

    _hearth_base = True
    _hearth_interface = ("encode", "decode")

    def __new__(cls, sd: Mapping[str, Any] | None = None, device: Any = None, config: Any = None,
                dtype: Any = None, metadata: Any = None) -> Any:
        if cls is VAE:
            return _vae_from_state_dict(sd, config, metadata)
        return super().__new__(cls)

    def __init__(self, sd: Mapping[str, Any] | None = None, device: Any = None, config: Any = None,
                 dtype: Any = None, metadata: Any = None) -> None:
        # Only a subclass's instance gets here (VAE(...) itself returns Hearth's value).
        self.hearth_value = _vae_from_state_dict(sd, config, metadata)


class CLIP(_Wrapper, metaclass=_HearthValueType):
    """``comfy.sd.CLIP``: ``CLIP(state_dict=[sd])`` builds Hearth's CLIP value from a text encoder's tensors;
    ``CLIP(no_init=True)`` is an empty instance a pack fills.

    An instance of this class (a pack's subclass, or ``no_init``) works on what it holds: Hearth's value as
    ``hearth_value`` (every method hands on to it), or ComfyUI's parts as a pack sets them -- ``tokenizer``
    (``tokenize_with_weights``), ``cond_stage_model`` (``encode_token_weights``, ``state_dict``) and ``patcher`` --
    with ComfyUI's method semantics. ``CLIP(target=...)`` builds ComfyUI's own text-encoder classes, which Hearth
    does not have."""

    _hearth_base = True
    _hearth_interface = ("tokenize", "encode_from_tokens")

    def __new__(cls, target: Any = None, embedding_directory: Any = None, no_init: bool = False,
                tokenizer_data: Any = None, parameters: int = 0, state_dict: Any = None,
                model_options: Mapping[str, Any] | None = None) -> Any:
        if cls is CLIP and not no_init:
            return _clip_from(target, embedding_directory, state_dict, model_options)
        return super().__new__(cls)

    def __init__(self, target: Any = None, embedding_directory: Any = None, no_init: bool = False,
                 tokenizer_data: Any = None, parameters: int = 0, state_dict: Any = None,
                 model_options: Mapping[str, Any] | None = None) -> None:
        self.layer_idx = None
        if not no_init:
            self.hearth_value = _clip_from(target, embedding_directory, state_dict, model_options)

    def _value(self) -> Any:
        return self.__dict__.get("hearth_value")

    def tokenize(self, text: str, return_word_ids: bool = False, **kwargs: Any) -> Any:
        if self._value() is not None:
            return self._value().tokenize(text)
        return self.tokenizer.tokenize_with_weights(text, return_word_ids, **kwargs)

    def encode_from_tokens(self, tokens: Any, return_pooled: bool | str = False, return_dict: bool = False) -> Any:
        if self._value() is not None:
            return self._value().encode_from_tokens(tokens, return_pooled=bool(return_pooled),
                                                    return_dict=return_dict)
        model = self.cond_stage_model
        if hasattr(model, "reset_clip_options"):
            model.reset_clip_options()
        if self.layer_idx is not None and hasattr(model, "set_clip_options"):
            model.set_clip_options({"layer": self.layer_idx})
        self.load_model()
        out = model.encode_token_weights(tokens)
        cond, pooled = out[0], out[1]
        if return_dict:
            return {"cond": cond, "pooled_output": pooled, **(out[2] if len(out) > 2 else {})}
        return (cond, pooled) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens: Any, unprojected: bool = False,
                                     add_dict: Mapping[str, Any] | None = None, show_pbar: bool = True) -> Any:
        """The CONDITIONING of ``tokens``: ``[[cond, {"pooled_output": pooled, **add_dict}]]``."""
        out = self.encode_from_tokens(tokens, return_dict=True)
        cond = out.pop("cond")
        return [[cond, {**out, **(add_dict or {})}]]

    def encode(self, text: str) -> Any:
        return self.encode_from_tokens(self.tokenize(text))

    def clone(self) -> CLIP:
        twin = type(self).__new__(type(self), no_init=True)
        twin.__dict__.update(self.__dict__)
        for name in ("hearth_value", "patcher"):
            if getattr(self.__dict__.get(name), "clone", None) is not None:
                twin.__dict__[name] = self.__dict__[name].clone()
        return twin

    def clip_layer(self, layer_idx: int) -> None:
        self.layer_idx = layer_idx
        if self._value() is not None:
            self._value().clip_layer(layer_idx)

    def add_patches(self, patches: Mapping[Any, Any], strength_patch: float = 1.0,
                    strength_model: float = 1.0) -> list[Any]:
        target = self._value() if self._value() is not None else self.patcher
        return target.add_patches(patches, strength_patch, strength_model)

    def get_key_patches(self) -> Any:
        return (self._value() if self._value() is not None else self.patcher).get_key_patches()

    def load_model(self) -> Any:
        if self._value() is not None:
            return self._value().load_model()
        patcher = self.__dict__.get("patcher")
        if patcher is not None:
            from hearth_comfy_compat import model_management

            model_management.load_model_gpu(patcher)
        return patcher

    def get_sd(self) -> dict[str, Any]:
        """The encoders' weights under ComfyUI's keys (``clip_l.transformer.text_model...``)."""
        if self._value() is not None:
            return self._value().model_state_dict()
        sd = dict(self.cond_stage_model.state_dict())
        tokenizer = self.__dict__.get("tokenizer")
        if tokenizer is not None and hasattr(tokenizer, "state_dict"):
            sd.update(tokenizer.state_dict())
        return sd

    def load_sd(self, sd: Mapping[str, Any], full_model: bool = False) -> Any:
        """Load weights into a pack's own ``cond_stage_model``; Hearth's values keep the weights of their files
        (put weights on one as patches: ``add_patches({key: ("set", (tensor,))})``)."""
        if self._value() is not None:
            raise lacking("comfy.sd.CLIP.load_sd", "Hearth's CLIP values keep their files' weights; put new "
                                                   "weights on a clone with add_patches({key: ('set', (w,))})")
        model = self.cond_stage_model
        if full_model or not hasattr(model, "load_sd"):
            return model.load_state_dict(dict(sd), strict=False)
        return model.load_sd(sd)


def _clip_from(target: Any, embedding_directory: Any, state_dict: Any, model_options: Any) -> Any:
    if state_dict:
        sds = [state_dict] if isinstance(state_dict, Mapping) else list(state_dict)
        return load_text_encoder_state_dicts(sds, embedding_directory, model_options=model_options)
    if target is not None:
        raise lacking("comfy.sd.CLIP(target=...)", "Hearth builds CLIP values from weights, not from ComfyUI's "
                                                   "text-encoder classes; pass state_dict=[...] or load a file")
    raise ValueError("comfy.sd.CLIP(...): Hearth builds CLIP values from files only (or a text encoder's state "
                     "dict: CLIP(state_dict=[sd])); use comfy.sd.load_clip or comfy.sd.load_checkpoint_guess_config")


# A checkpoint's VAE keys: a VAE file keeps them without it.
_CHECKPOINT_VAE_PREFIX = "first_stage_model."


def _vae_from_state_dict(sd: Mapping[str, Any] | None, config: Any = None, metadata: Any = None) -> Any:
    from hearth.core.models import strip_prefix

    if sd is None or config is not None:
        raise ValueError("comfy.sd.VAE: Hearth builds a VAE from its state dict only (VAE(sd=...)); load a file "
                         "with VAELoader or comfy.sd.load_checkpoint_guess_config")
    sd = dict(sd)
    if "taesd_decoder.1.weight" in sd:
        return TAESDVAE.from_state_dict(sd)
    if any(k.startswith(_CHECKPOINT_VAE_PREFIX) for k in sd):
        sd = strip_prefix(sd, _CHECKPOINT_VAE_PREFIX)
    sd = {k: v for k, v in sd.items() if not k.startswith("model_ema.")}
    return _load_tensors("vae", sd, metadata if isinstance(metadata, Mapping) else None)


def __getattr__(name: str) -> Any:
    # comfy.sd imports these modules in ComfyUI, and packs reach them through it (comfy.sd.model_detection...).
    if name in ("model_detection", "model_management", "model_patcher", "utils", "lora", "clip_vision",
                "sd1_clip", "sdxl_clip", "model_base", "supported_models_base"):
        import importlib

        try:
            return importlib.import_module(f"comfy.{name}")
        except ImportError:
            pass
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TAESDVAE(ModelValue):
    """The VAE value of a TAESD state dict (``taesd_encoder.*`` / ``taesd_decoder.*``, optionally ``vae_scale`` /
    ``vae_shift``, as ComfyUI's VAELoader assembles the ``vae_approx`` files): IMAGE ``[B, H, W, 3]`` in 0..1 <->
    LATENT at 1/8 size through :class:`comfy.taesd.taesd.TAESD`, computed where the model manager puts it."""

    def __init__(self, taesd: torch.nn.Module, patcher: PatchedModel) -> None:
        super().__init__(patcher)
        self.first_stage_model = taesd
        self.downscale_ratio = self.upscale_ratio = 8

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, Any]) -> TAESDVAE:
        from hearth_comfy_compat.comfyui.comfy.taesd.taesd import TAESD

        channels = sd["taesd_decoder.1.weight"].shape[1]
        taesd = TAESD(latent_channels=channels)
        missing, _ = taesd.load_state_dict({k: v for k, v in sd.items()}, strict=False)
        if any(not k.startswith("vae_") for k in missing):
            raise ValueError(f"comfy.sd.VAE: the TAESD state dict lacks {sorted(missing)[:3]}...")
        return cls(taesd.eval(), PatchedModel(taesd, name="TAESD"))

    @property
    def latent_channels(self) -> int:
        return self.first_stage_model.taesd_decoder[1].in_channels

    def spacial_compression_decode(self) -> int:
        return self.downscale_ratio

    def spacial_compression_encode(self) -> int:
        return self.downscale_ratio

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """IMAGE ``[B, H, W, C]`` in 0..1 (cropped to multiples of 8, alpha dropped) -> latent (float32, CPU)."""
        h, w = image.shape[1] // 8 * 8, image.shape[2] // 8 * 8
        device = self.ensure_loaded()
        x = image[:, :h, :w, :3].movedim(-1, 1).to(device, torch.float32) * 2 - 1
        with torch.no_grad():
            return self.first_stage_model.encode(x).float().cpu()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``[B, C, h, w]`` -> IMAGE ``[B, 8h, 8w, 3]`` in 0..1 (float32, CPU)."""
        device = self.ensure_loaded()
        with torch.no_grad():
            x = self.first_stage_model.decode(latent.to(device, torch.float32)).float()
        return ((x + 1) / 2).clamp(0, 1).movedim(1, -1).cpu()

    def decode_tiled(self, latent: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.decode(latent)  # TAESD is small: a whole decode costs what a tile would

    def encode_tiled(self, image: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.encode(image)
