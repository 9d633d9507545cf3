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
        cls = self.added.get(name) or comfy_class(name, loaders=False)
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
    cls = comfy_class(name) if name[:1].isupper() else None
    if cls is None:
        raise AttributeError(name)
    return cls


# Class attributes ComfyUI's builtin node classes carry and packs read (rgthree's image resize node builds its
# INPUT_TYPES from ImageScale.upscale_methods): attribute -> the input whose choices it lists.
_CLASS_LISTS = {
    "ImageScale": {"upscale_methods": "upscale_method", "crop_methods": "crop"},
    "ImageScaleBy": {"upscale_methods": "upscale_method"},
    "LatentUpscale": {"upscale_methods": "upscale_method", "crop_methods": "crop"},
    "LatentUpscaleBy": {"upscale_methods": "upscale_method"},
}
_with_lists: dict[type, type] = {}


def comfy_class(name: str, loaders: bool = True) -> type | None:
    """The node class packs get as ``nodes.<name>``: the registry's class (with the class-level lists ComfyUI's
    has, where Hearth's lacks them: then a subclass adding them), else (with ``loaders``) Hearth's stand-in for a
    ComfyUI loader Hearth has no node for (:class:`DualCLIPLoader`...), else ``None``."""
    cls = node_class(name)
    if cls is None:
        return _LOADERS.get(name) if loaders else None
    lists = {attr: choice for attr, choice in _CLASS_LISTS.get(name, {}).items() if not hasattr(cls, attr)}
    if not lists:
        return cls
    if cls not in _with_lists:
        required = cls.INPUT_TYPES().get("required", {})
        attrs = {attr: list(required[choice][0]) for attr, choice in lists.items() if choice in required}
        _with_lists[cls] = type(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                                        "__doc__": cls.__doc__, **attrs})
    return _with_lists[cls]


_CLIP_TYPES = ["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image", "hunyuan_video_15", "kandinsky5",
               "kandinsky5_image", "newbie"]


class _MultiCLIPLoader:
    """ComfyUI's loaders of a CLIP made of several text-encoder files. Packs build their own loaders' INPUT_TYPES
    from these (GGUF's DualCLIPLoaderGGUF), so the inputs are ComfyUI's; loading goes to ``comfy.sd.load_clip``,
    which names what Hearth cannot load (its CLIPs come from one file)."""

    CATEGORY = "advanced/loaders"
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load_clip"
    FILES = 2
    TYPES: list[str] | None = None
    DEFAULT_TYPE = "sdxl"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        from hearth_comfy_compat import folder_paths

        names = folder_paths.get_filename_list("text_encoders")
        required: dict[str, Any] = {f"clip_name{i}": (names,) for i in range(1, cls.FILES + 1)}
        if cls.TYPES is not None:
            required["type"] = (list(cls.TYPES),)
        return {"required": required, "optional": {"device": (["default", "cpu"], {"advanced": True})}}

    def load_clip(self, *args: Any, **kwargs: Any) -> tuple[Any]:
        """ComfyUI's ``load_clip(clip_name1, ..., [type], device="default")``, by position or by name."""
        from hearth_comfy_compat import comfy_sd, folder_paths

        rest = list(args[self.FILES:])
        names = [kwargs.pop(f"clip_name{i}") if f"clip_name{i}" in kwargs else args[i - 1]
                 for i in range(1, self.FILES + 1)]
        kind = kwargs.pop("type", rest.pop(0) if self.TYPES is not None and rest else self.DEFAULT_TYPE)
        device = kwargs.pop("device", rest.pop(0) if rest else "default")
        paths = [folder_paths.get_full_path_or_raise("text_encoders", name) for name in names]
        options = {"load_device": "cpu", "offload_device": "cpu"} if device == "cpu" else {}
        clip_type = getattr(comfy_sd.CLIPType, kind.upper(), comfy_sd.CLIPType.STABLE_DIFFUSION)
        return (comfy_sd.load_clip(ckpt_paths=paths, embedding_directory=folder_paths.get_folder_paths("embeddings"),
                                   clip_type=clip_type, model_options=options),)


class DualCLIPLoader(_MultiCLIPLoader):
    """Two text encoders as one CLIP (SDXL: clip-l and clip-g; Flux: clip-l and t5)."""

    TYPES = _CLIP_TYPES


class TripleCLIPLoader(_MultiCLIPLoader):
    """Three text encoders as one CLIP (SD3: clip-l, clip-g and t5)."""

    FILES = 3
    DEFAULT_TYPE = "sd3"


class QuadrupleCLIPLoader(_MultiCLIPLoader):
    """Four text encoders as one CLIP (HiDream)."""

    FILES = 4
    DEFAULT_TYPE = "hidream"


_LOADERS: dict[str, type] = {cls.__name__: cls for cls in (DualCLIPLoader, TripleCLIPLoader, QuadrupleCLIPLoader)}


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
        cls = comfy_class(name) if name in exported else None
        if cls is None:
            raise AttributeError(name)
        return cls

    return module_getattr

