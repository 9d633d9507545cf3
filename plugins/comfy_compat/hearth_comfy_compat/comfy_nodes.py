"""ComfyUI's ``nodes`` module: MAX_RESOLUTION, the node class mappings, and every node class under its ComfyUI name.

``SaveImage``, ``PreviewImage`` and ``LoadImage`` are Hearth's own classes, so a pack that subclasses them gets
Hearth's saving. Other names (``VAEDecode``, ``KSampler``, ``CLIPTextEncode``...) resolve to whatever class the
node registry holds under that name, the plugin's real node. ``common_ksampler`` is KSampler's body, as custom
sampler nodes call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from hearth.core.builtin_nodes.image_io import LoadImage, PreviewImage, SaveImage
from hearth.core.images import MAX_RESOLUTION
from hearth.core.plugins import active_plugins
from hearth_comfy_compat import services

__all__ = ["MAX_RESOLUTION", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS",
           "LoadImage", "PreviewImage", "SaveImage", "before_node_execution", "common_ksampler",
           "interrupt_processing"]

def _installed_classes() -> dict[str, type]:
    """While packs load there is no registry yet: the classes the plugins loaded so far register, asked directly
    (so `from nodes import VAEDecode` at a pack's module level works); the first plugin registered wins, which puts
    the builtin nodes first."""
    manager = services.loading_manager()
    if manager is None:
        return {}
    classes: dict[str, type] = {}
    for impl in manager.pm.hook.register_nodes.get_hookimpls():
        try:
            found = impl.function()
        except Exception:  # noqa: BLE001 - a broken plugin is reported by the plugin manager, not here
            continue
        pairs = found.items() if isinstance(found, Mapping) else ((d.name, d.cls) for d in found or ())
        for name, cls in pairs:
            classes.setdefault(name, cls)
    return classes


def node_class(name: str) -> type | None:
    """The class registered under ``name``: the active registry, or while packs load the plugins loaded so far."""
    plugins = active_plugins()
    if plugins is not None:
        registry = plugins.nodes()
        if name in registry:
            return registry[name].cls
    return _installed_classes().get(name)


class _ClassMappings(MutableMapping):
    """ComfyUI's ``NODE_CLASS_MAPPINGS``: the registry's classes, plus what packs add to it at run time."""

    def __init__(self) -> None:
        self.added: dict[str, type] = {}

    def _names(self) -> list[str]:
        plugins = active_plugins()
        names = list(plugins.nodes()) if plugins is not None else list(_installed_classes())
        return list(dict.fromkeys([*names, *self.added]))

    def __getitem__(self, name: str) -> type:
        cls = self.added.get(name) or node_class(name)
        if cls is None:
            raise KeyError(name)
        return cls

    def __setitem__(self, name: str, cls: type) -> None:
        self.added[name] = cls

    def __delitem__(self, name: str) -> None:
        del self.added[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


class _DisplayNames(MutableMapping):
    """``NODE_DISPLAY_NAME_MAPPINGS``: the registry's display names, plus what packs add."""

    def __init__(self) -> None:
        self.added: dict[str, str] = {}

    def _all(self) -> dict[str, str]:
        plugins = active_plugins()
        registry = plugins.nodes() if plugins is not None else {}
        names = {n: registry[n].display_name for n in registry if registry[n].display_name}
        return names | self.added

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __setitem__(self, name: str, display: str) -> None:
        self.added[name] = display

    def __delitem__(self, name: str) -> None:
        del self.added[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def common_ksampler(model: Any, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
                    positive: list, negative: list, latent: dict[str, Any], denoise: float = 1.0,
                    disable_noise: bool = False, start_step: int | None = None, last_step: int | None = None,
                    force_full_denoise: bool = False) -> tuple[dict[str, Any]]:
    """KSampler's body: ``(LATENT,)`` sampled from ``latent`` with the samplers plugin, progress and previews
    going to the running node."""
    from hearth_comfy_compat.comfy_samplers import _lookup, _sampling

    if getattr(type(model), "HEARTH_LENT", False):  # in a pack host: Hearth's process samples its own model
        return model.hearth_sample("common_ksampler", {
            "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler_name, "scheduler": scheduler,
            "positive": positive, "negative": negative, "latent": latent, "denoise": denoise,
            "disable_noise": disable_noise, "start_step": start_step, "last_step": last_step,
            "force_full_denoise": force_full_denoise})
    _lookup("sampler", sampler_name)
    _lookup("scheduler", scheduler)
    return (_sampling().common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                                        denoise=denoise, disable_noise=disable_noise, start_step=start_step,
                                        last_step=last_step, force_full_denoise=force_full_denoise),)


class _WebDirectories(MutableMapping):
    """``EXTENSION_WEB_DIRS``: each pack's web folder; what packs add here is served at /extensions/<name>/."""

    def __init__(self) -> None:
        self.added: dict[str, str] = {}

    def _all(self) -> dict[str, str]:
        plugins = active_plugins()
        found = {pack: str(path) for pack, path in (plugins.web_directories() if plugins else {}).items()}
        return found | self.added

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __setitem__(self, name: str, folder: Any) -> None:
        self.added[name] = str(folder)

    def __delitem__(self, name: str) -> None:
        del self.added[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


NODE_CLASS_MAPPINGS = _ClassMappings()
NODE_DISPLAY_NAME_MAPPINGS = _DisplayNames()
EXTENSION_WEB_DIRS = _WebDirectories()


def __getattr__(name: str) -> Any:
    cls = node_class(name) if name[:1].isupper() else None
    if cls is None:
        raise AttributeError(name)
    return cls


def interrupt_processing(value: bool = True) -> None:
    """Ask the running prompt to stop (``False`` withdraws the request), as ComfyUI's Cancel button does."""
    from hearth_comfy_compat import model_management

    model_management.interrupt_current_processing(value)


def before_node_execution() -> None:
    """Raise ``InterruptProcessingException`` if the user interrupted (ComfyUI calls it before each node)."""
    from hearth.core import context

    context.check_interrupted()


def node_exports(names: Iterable[str]) -> Callable[[str], type]:
    """A module ``__getattr__`` for a ComfyUI ``comfy_extras.nodes_*`` module: each of ``names`` (the node classes
    ComfyUI defines there) is the class the node registry holds under it. A name Hearth has no node for raises
    ``AttributeError``, which the import hook turns into a recorded stand-in naming it."""
    exported = frozenset(names)

    def module_getattr(name: str) -> type:
        cls = node_class(name) if name in exported else None
        if cls is None:
            raise AttributeError(name)
        return cls

    return module_getattr

