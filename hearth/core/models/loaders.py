"""Loading a model file through the loaders plugins register: detect the file's format, hand it to its family.

``register_model_loaders`` maps ``(kind, name)`` to ``load(path, **options) -> value``. ``kind`` is the model
folder kind (``checkpoints``, ``vae``, ``text_encoders``, ``diffusion_models``); ``name`` is the format name
detection gives the file, or for text encoders the ``type`` a user picks in ``CLIPLoader``. The generic loader
nodes (:mod:`hearth.core.models.loader_nodes`) and the ComfyUI compatibility plugin both load through
:func:`load_model_file`, so one installed family plugin serves both.

No torch at import: the loader nodes import this module when plugins load.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

KINDS = ("checkpoints", "vae", "text_encoders", "diffusion_models")
_WHAT = {"checkpoints": "a checkpoint (MODEL, CLIP, VAE)", "vae": "a VAE", "text_encoders": "a text encoder",
         "diffusion_models": "a standalone diffusion model"}


class NoModelLoaderError(ValueError):
    """No installed plugin loads a file as the kind asked for; the message names the file, its detected format
    and the families that are installed for that kind."""


def _plugins(plugins: Any) -> Any:
    if plugins is not None:
        return plugins
    from hearth.core.plugins import active_plugins

    found = active_plugins()
    if found is None:
        raise RuntimeError("no plugins are loaded: model loaders come from plugins; load them first "
                           "(hearth.core.plugins.load_plugins) or pass plugins=")
    return found


def model_loaders(kind: str, plugins: Any = None) -> dict[str, Callable[..., Any]]:
    """The loaders plugins registered for ``kind``, by format or type name (empty without a plugin manager)."""
    if plugins is None:
        from hearth.core.plugins import active_plugins

        plugins = active_plugins()
        if plugins is None:
            return {}
    found = plugins.resolve_named("register_model_loaders", "model loader")
    return {name: load for (for_kind, name), load in found.items() if for_kind == kind}


def _installed(kind: str, loaders: dict[str, Any]) -> str:
    if not loaders:
        return f"no installed plugin loads {kind} files"
    return f"installed loaders for {kind}: {', '.join(sorted(loaders))}"


def load_model_file(kind: str, path: str | os.PathLike[str], *, type: str | None = None, plugins: Any = None,
                    **options: Any) -> Any:
    """Load ``path`` as ``kind`` through the loader a plugin registered for it.

    :param kind: ``"checkpoints"`` (returns the ``(MODEL, CLIP, VAE)`` tuple), ``"vae"``, ``"text_encoders"`` or
        ``"diffusion_models"`` (or any kind a plugin registers loaders for).
    :param path: the file.
    :param type: the loader's name to use without detecting the format (``CLIPLoader``'s ``type``:
        ``"stable_diffusion"``, ``"wan"``...). Without it the file's format is detected
        (:func:`~hearth.core.models.detect_with_plugins`) and its name picks the loader.
    :param plugins: the plugin manager (default: the active one).
    :param options: passed to the loader (``weight_dtype``, ``device``, ``embeddings``...).

    :raises NoModelLoaderError: naming the file, the format detected (or why none was) and the installed loaders
        for ``kind``, when no loader fits.
    """
    plugins = _plugins(plugins)
    path = Path(path)
    loaders = model_loaders(kind, plugins)
    if type is not None:
        load = loaders.get(type)
        if load is None:
            raise NoModelLoaderError(f"{path.name}: no installed plugin loads {kind} of type {type!r}; "
                                     f"{_installed(kind, loaders)}")
        return load(path, **options)
    from hearth.core.models.detection import AmbiguousModelError, UnknownModelError, detect_with_plugins

    try:
        found = detect_with_plugins(path, plugins)
    except (UnknownModelError, AmbiguousModelError) as exc:
        raise NoModelLoaderError(f"{exc} ({_installed(kind, loaders)})") from None
    load = loaders.get(found.name)
    if load is None:
        what = f" ({found.description})" if found.description else ""
        raise NoModelLoaderError(f"{path.name}: detected format {found.name!r}{what}, which no installed plugin "
                                 f"loads as {_WHAT.get(kind, kind)}; {_installed(kind, loaders)}. Load it with "
                                 f"the loader node of its kind, or install the plugin for its family")
    return load(path, **options)
