"""ComfyUI's ``comfy.sampler_helpers`` module: what a pack's own sampling loop does around the sampler: converting
CONDITIONING, collecting the extra models it names (ControlNets, GLIGEN, ``additional_models``), loading the MODEL
through Hearth's model manager, masks.

What differs: ``convert_cond`` stores the text embedding itself under ``model_conds["c_crossattn"]`` (ComfyUI wraps
it in a ``comfy.conds.CONDCrossAttn``); Hearth's own samplers take CONDITIONING unconverted, as
``comfy.samplers.sample`` does. Hook keyframes (``get_hooks_from_cond``, ``prepare_model_patcher``) are not provided.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from hearth_comfy_compat import comfy_utils, model_management

__all__ = ["cleanup_additional_models", "cleanup_models", "convert_cond", "get_additional_models",
           "get_models_from_cond", "prepare_mask", "prepare_sampling"]


def prepare_mask(noise_mask: Any, shape: Any, device: Any) -> Any:
    """A LATENT's ``noise_mask`` resized and repeated to a latent of ``shape``, on ``device``."""
    return comfy_utils.reshape_mask(noise_mask, shape).to(device)


def get_models_from_cond(cond: Iterable[Mapping[str, Any]], model_type: str) -> list[Any]:
    """The models converted conditioning entries carry under ``model_type`` (``"control"``, ``"gligen"``...)."""
    models: list[Any] = []
    for entry in cond:
        if model_type in entry:
            found = entry[model_type]
            models += found if isinstance(found, list) else [found]
    return models


def convert_cond(cond: Iterable[Any]) -> list[dict[str, Any]]:
    """CONDITIONING ``[[embedding, options], ...]`` as the dicts ComfyUI's sampler works on: a copy of each entry's
    options with the embedding under ``cross_attn`` and ``model_conds["c_crossattn"]``, and a fresh ``uuid``."""
    out = []
    for embedding, options in cond:
        entry = dict(options)
        model_conds = dict(entry.get("model_conds", {}))
        if embedding is not None:
            model_conds["c_crossattn"] = embedding
            entry["cross_attn"] = embedding
        entry["model_conds"] = model_conds
        entry["uuid"] = uuid.uuid4()
        out.append(entry)
    return out


def get_additional_models(conds: Mapping[str, Any], dtype: Any) -> tuple[list[Any], int]:
    """``(models, inference_memory)``: the models converted ``conds`` (``{"positive": [...], ...}``) need beside
    the MODEL, ControlNets (each asked ``get_models()`` and ``inference_memory_requirements(dtype)``), GLIGEN and
    ``additional_models``, and the bytes the ControlNets need while they run."""
    controls: list[Any] = []
    gligen: list[Any] = []
    added: list[Any] = []
    for cond in conds.values():
        controls += get_models_from_cond(cond, "control")
        gligen += get_models_from_cond(cond, "gligen")
        added += get_models_from_cond(cond, "additional_models")
    models: list[Any] = []
    memory = 0
    for control in dict.fromkeys(controls):  # one ControlNet applied to several entries counts once
        models += list(control.get_models()) if hasattr(control, "get_models") else []
        if hasattr(control, "inference_memory_requirements"):
            memory += int(control.inference_memory_requirements(dtype))
    # A GLIGEN entry is (kind, model, ...), as ComfyUI stores it.
    models += [entry[1] for entry in gligen]
    return models + added, memory


def cleanup_additional_models(models: Iterable[Any]) -> None:
    """Let each model that has a ``cleanup`` (a ControlNet's per-run state) drop it."""
    for model in models:
        if hasattr(model, "cleanup"):
            model.cleanup()


def prepare_sampling(model: Any, noise_shape: Any, conds: Mapping[str, Any],
                     model_options: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, Any], list[Any]]:
    """Load the MODEL and the models ``conds`` need through Hearth's model manager, with room for a batch of twice
    ``noise_shape`` (positive and negative together); ``(model.model, conds, models)`` as ComfyUI returns them."""
    dtype = model.model_dtype() if hasattr(model, "model_dtype") else None
    models, inference_memory = get_additional_models(conds, dtype)
    shape = [noise_shape[0] * 2, *noise_shape[1:]]
    required = model.memory_required(shape) if hasattr(model, "memory_required") else 0
    model_management.load_models_gpu([model, *models], memory_required=int(required) + inference_memory)
    return getattr(model, "model", model), conds, models


def cleanup_models(conds: Mapping[str, Any], models: Iterable[Any]) -> None:
    """After sampling: :func:`cleanup_additional_models` on ``models`` and on every ControlNet in ``conds``."""
    cleanup_additional_models(models)
    controls: list[Any] = []
    for cond in conds.values():
        controls += get_models_from_cond(cond, "control")
    cleanup_additional_models(dict.fromkeys(controls))
