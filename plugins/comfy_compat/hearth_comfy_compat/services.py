"""How the ComfyUI modules reach the other plugins: the plugin manager, its samplers and sampling engine, LoRA.

Only through hooks and the node registry, never by importing a plugin's modules, so a pack sees whatever
families, samplers and LoRA support are installed, and a missing one is named with what to install.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hearth.core.plugins import active_plugins

# A context variable, so a pack's async comfy_entrypoint run in a helper thread (with a copy of the context) sees
# it too.
_loading: contextvars.ContextVar[Any] = contextvars.ContextVar("hearth_comfy_compat_loading", default=None)


@contextmanager
def loading(manager: Any) -> Iterator[None]:
    """While packs load, ``comfy.samplers.KSampler.SAMPLERS`` and the like read the manager loading them (it is
    not the active one yet)."""
    token = _loading.set(manager)
    try:
        yield
    finally:
        _loading.reset(token)


def loading_manager() -> Any:
    """The plugin manager loading packs in this context, or ``None`` outside a load."""
    return _loading.get()


def plugins() -> Any:
    """The plugin manager packs run under: the one loading them, else the active one."""
    manager = _loading.get() or active_plugins()
    if manager is None:
        raise RuntimeError("no Hearth plugins are loaded: ComfyUI's modules are backed by plugins; load them first "
                           "(comfy run/serve do; in Python, hearth.core.plugins.load_plugins)")
    return manager


def registered(kind: str) -> dict[str, Callable[..., Any]]:
    """The samplers (``kind="sampler"``) or schedulers the plugins register, by name."""
    manager = _loading.get() or active_plugins()
    if manager is None:
        return {}
    return manager.samplers() if kind == "sampler" else manager.schedulers()


def sampling_engine() -> Any:
    """The engine a plugin offers through ``resolve_sampling_engine``, or an error saying what to install."""
    engine = plugins().hook.resolve_sampling_engine()
    if engine is None:
        raise RuntimeError("comfy.samplers and comfy.sample need a plugin that samples (Hearth's samplers plugin, "
                           "hearth-samplers): install it with `pip install -e plugins/samplers`")
    return engine


def lora_for_models(model: Any, clip: Any, lora: Any, strength_model: float, strength_clip: float) -> tuple[Any, Any]:
    """``(model, clip)`` with a LoRA state dict on, through the ``lora_for_models`` hook."""
    result = plugins().hook.lora_for_models(model=model, clip=clip, lora=lora, strength_model=strength_model,
                                            strength_clip=strength_clip)
    if result is None:
        raise RuntimeError("comfy.sd.load_lora_for_models needs a plugin that applies LoRAs (Hearth's LoRA plugin, "
                           "hearth-lora): install it with `pip install -e plugins/lora`")
    return tuple(result)
