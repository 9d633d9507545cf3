"""Values of Hearth's process lent to a pack host, and functions of a pack's host lent to Hearth's sampler.

What crosses to a host (:func:`lend`): containers and tensors as values (tensors on the CPU), Hearth's MODEL, CLIP,
VAE and model_sampling as :class:`Exported` handles whose documented methods -- and only those, listed in
:data:`hearth_comfy_compat.host_side.METHODS` -- the host may call back (:class:`ModelExports` is the host's export
policy), and any other object as a handle the pack may only hand back. What comes back (:func:`unwrap`) is the
original object again.

A function a pack sets on a MODEL (``set_model_sampler_cfg_function`` and the other ``set_model_*`` patches) stays
in its host: the clone records a :class:`HostCallback`, which the sampler calls like the function, and which calls
it in the host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hearth_comfy_compat.host_side import CALLBACK_SETTERS, METHODS

if TYPE_CHECKING:
    from hearth_comfy_compat.isolated import IsolatedPack

class Exported:
    """A value of Hearth's process lent to a pack host: the host sees a proxy and may call only the methods of
    ``METHODS[kind]`` (each defined here, so nothing else of the value is reachable)."""

    __slots__ = ("value", "kind", "pack", "device")

    def __init__(self, value: Any, kind: str, pack: IsolatedPack | None = None, device: Any = None) -> None:
        self.value, self.kind, self.pack, self.device = value, kind, pack, device

    def __repr__(self) -> str:
        return f"<{self.kind} lent to a pack host>"

    def _wrap(self, value: Any) -> Exported:
        return Exported(value, self.kind, self.pack, self.device)

    # FUNCTION
    def hearth_call(self, *args: Any, **kwargs: Any) -> Any:
        """Call the lent function with the host's arguments (moved back to the device the caller worked on)."""
        args, kwargs = to_device(unwrap((args, kwargs)), self.device)
        return lend(self.value(*args, **kwargs), self.pack, self.device)

    # MODEL, CLIP, VAE
    def clone(self) -> Exported:
        return self._wrap(self.value.clone())

    def add_patches(self, patches: Mapping[Any, Any], strength_patch: float = 1.0,
                    strength_model: float = 1.0) -> list[Any]:
        return list(self.value.add_patches(dict(patches), strength_patch, strength_model))

    def hearth_weight_keys(self, filter_prefix: str | None = None) -> list[str]:
        """The weights' keys (ComfyUI's names) under ``filter_prefix``; the host then asks for them in batches."""
        return list(self.value.model_state_dict(filter_prefix))

    def hearth_weights(self, keys: list[str], patched: bool = True) -> dict[str, list[Any]]:
        """``{key: [weight]}`` for ``keys``: with this clone's patches (``get_key_patches``) or without
        (``model_state_dict``)."""
        wanted, found = set(keys), {}
        for key in keys:
            if key in found:
                continue
            if patched:  # a key as prefix may also match longer keys; only the asked ones are kept
                found.update({k: v for k, v in self.value.get_key_patches(key).items() if k in wanted})
            else:
                found.update({k: [v] for k, v in self.value.model_state_dict(key).items() if k in wanted})
        return on_cpu(found)

    def is_clone(self, other: Any) -> bool:
        return bool(self.value.is_clone(unwrap(other)))

    def model_size(self) -> int:
        return int(self.value.model_size())

    def memory_bytes(self) -> int:
        return int(self.value.memory_bytes())

    def hearth_model_options(self) -> dict[str, Any]:
        """A copy of ``model_options`` with only what crosses (functions and objects left out)."""
        return _plain_copy(getattr(self.value, "model_options", {}))

    def hearth_device(self, which: str = "load") -> str:
        return str(self.value.offload_device if which == "offload" else self.value.load_device)

    def hearth_lora(self, model: Any, clip: Any, lora: dict[str, Any], strength_model: float,
                    strength_clip: float) -> tuple[Any, Any]:
        """``comfy.sd.load_lora_for_models`` for a pack host: clones of the lent model and clip with the LoRA on."""
        from hearth_comfy_compat import services

        patched = services.lora_for_models(unwrap(model), unwrap(clip), lora, strength_model, strength_clip)
        return tuple(lend(v, self.pack, self.device) for v in patched)

    def hearth_sample(self, how: str, kwargs: dict[str, Any]) -> Any:
        """Sample the lent model for a pack host (``common_ksampler`` or ``sample``), with the pack's step callback
        called back in its host."""
        if self.pack is None or how not in ("common_ksampler", "sample", "fix_empty_latent_channels"):
            raise ValueError(f"cannot sample {how!r} for a pack host")
        kwargs = {k: self.pack.callback(v, "sampler callback") for k, v in kwargs.items()}
        if how == "fix_empty_latent_channels":
            from hearth_comfy_compat.comfy_sample import fix_empty_latent_channels

            result = fix_empty_latent_channels(self.value, **kwargs)
        elif how == "common_ksampler":
            from hearth_comfy_compat.comfy_nodes import common_ksampler

            result = common_ksampler(self.value, **kwargs)
        else:
            from hearth_comfy_compat.comfy_sample import sample

            result = sample(self.value, **kwargs)
        return lend(result, self.pack, self.device)

    def hearth_latent(self, direction: str, latent: Any) -> Any:
        """``model.model.process_latent_in`` / ``process_latent_out`` of the lent model, on the host's latent."""
        if direction not in ("in", "out"):
            raise ValueError(f"process_latent_{direction} is not lent")
        convert = self.value.get_model_object(f"process_latent_{direction}")
        return on_cpu(convert(latent))

    def hearth_latent_family(self) -> str:
        """The latent format's family name (what a previewer colours by)."""
        return str(getattr(self.value.get_model_object("latent_format"), "family", "") or "")

    def hearth_unet_config(self) -> dict[str, Any]:
        """A copy of ``model.model_config.unet_config`` (numbers, strings, lists): the UNet's shape."""
        try:
            config = self.value.get_model_object("model_config").unet_config
        except AttributeError:
            raise ValueError(f"this {type(self.value).__name__} has no model_config.unet_config") from None
        return _plain_copy(config)

    def get_model_object(self, name: str) -> Any:
        if name != "model_sampling":  # the host's proxy refuses the others before asking
            raise ValueError(f"only model_sampling is lent, not {name!r}")
        return Exported(self.value.get_model_object(name), "MODEL_SAMPLING", self.pack)

    # MODEL_SAMPLING
    def hearth_attr(self, name: str) -> Any:
        if name not in ("sigma_min", "sigma_max", "sigma_data", "sigmas"):
            raise ValueError(f"model_sampling.{name} is not lent")
        found = getattr(self.value, name)
        return on_cpu(found) if hasattr(found, "device") else float(found)

    def timestep(self, sigma: Any) -> Any:
        return self._sampling("timestep", sigma)

    def sigma(self, timestep: Any) -> Any:
        return self._sampling("sigma", timestep)

    def percent_to_sigma(self, percent: float) -> Any:
        return self._sampling("percent_to_sigma", percent)

    def calculate_input(self, sigma: Any, x: Any) -> Any:
        return self._sampling("calculate_input", sigma, x)

    def calculate_denoised(self, sigma: Any, output: Any, x: Any) -> Any:
        return self._sampling("calculate_denoised", sigma, output, x)

    def noise_scaling(self, sigma: Any, noise: Any, latent: Any, *args: Any, **kwargs: Any) -> Any:
        return self._sampling("noise_scaling", sigma, noise, latent, *args, **kwargs)

    def _sampling(self, method: str, *args: Any, **kwargs: Any) -> Any:
        device = device_of(getattr(self.value, "sigmas", None))
        args, kwargs = to_device((args, kwargs), device)
        return on_cpu(getattr(self.value, method)(*args, **kwargs))

    # CLIP
    def tokenize(self, text: str, *args: Any, **kwargs: Any) -> Exported:
        return Exported(self.value.tokenize(text, *args, **kwargs), "CLIP_TOKENS", self.pack)

    def encode_from_tokens(self, tokens: Any, return_pooled: Any = False, return_dict: bool = False) -> Any:
        return on_cpu(self.value.encode_from_tokens(unwrap(tokens), return_pooled=return_pooled,
                                                     return_dict=return_dict))

    def encode_from_tokens_scheduled(self, tokens: Any, *args: Any, **kwargs: Any) -> Any:
        return on_cpu(self.value.encode_from_tokens_scheduled(unwrap(tokens), *args, **kwargs))

    def clip_layer(self, layer_idx: int) -> None:
        self.value.clip_layer(layer_idx)

    # VAE
    def encode(self, pixels: Any) -> Any:
        return on_cpu(self.value.encode(pixels))

    def decode(self, samples: Any) -> Any:
        return on_cpu(self.value.decode(samples))

    def encode_tiled(self, pixels: Any, *args: Any, **kwargs: Any) -> Any:
        return on_cpu(self.value.encode_tiled(pixels, *args, **kwargs))

    def decode_tiled(self, samples: Any, *args: Any, **kwargs: Any) -> Any:
        return on_cpu(self.value.decode_tiled(samples, *args, **kwargs))

    def spacial_compression_encode(self) -> Any:
        return self.value.spacial_compression_encode()

    def spacial_compression_decode(self) -> Any:
        return self.value.spacial_compression_decode()


def _setter(name: str) -> Callable[..., None]:
    """A ModelPatcher setter taking a function: the pack's function (which stays in its host) is recorded on the
    clone as a :class:`HostCallback`, so the sampler calls it in the host."""

    def setter(self: Exported, *args: Any, **kwargs: Any) -> None:
        if self.pack is None:
            raise RuntimeError(f"{self.kind}.{name}: no pack host to call back")
        args = tuple(self.pack.callback(a, name) for a in args)
        kwargs = {k: self.pack.callback(v, name) for k, v in kwargs.items()}
        getattr(self.value, name)(*args, **kwargs)

    setter.__name__ = name
    return setter


for _name in CALLBACK_SETTERS:
    setattr(Exported, _name, _setter(_name))


class HostCallback:
    """A function a pack set on a MODEL (a guidance or attention patch), living in the pack's host: calling it
    calls it there, with the arguments crossing as a node's inputs do and the result coming back on the device the
    arguments were on."""

    def __init__(self, pack: IsolatedPack, fn: Any, what: str) -> None:
        self.pack, self.fn, self.what = pack, fn, what

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.pack.invoke(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<{self.what} function of pack {self.pack.name!r}, run in its host>"


def device_of(value: Any) -> Any:
    """The device of the first tensor found in ``value`` that is not on the CPU (``None``: all on the CPU)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            found = device_of(item)
            if found is not None:
                return found
        return None
    device = getattr(value, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu" and callable(getattr(value, "to", None)):
        return device
    return None


def to_device(value: Any, device: Any) -> Any:
    if device is None:
        return value
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    if type(value).__module__.startswith("torch") and callable(getattr(value, "to", None)) and \
            hasattr(value, "device"):
        return value.to(device)
    return value


def on_cpu(value: Any) -> Any:
    """``value`` with its tensors on the CPU: shared memory carries CPU tensors (a resident model's weights and
    a VAE's results may be on the GPU)."""
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(v) for v in value)
    device = getattr(value, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu" and callable(getattr(value, "cpu", None)):
        return value.detach().cpu()
    return value


def _plain_copy(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            copied = _plain_copy(item)
            if copied is not _SKIP:
                out[str(key)] = copied
        return out
    if isinstance(value, (list, tuple)):
        return [c for c in (_plain_copy(v) for v in value) if c is not _SKIP]
    return _SKIP


_SKIP = object()


class ModelExports:
    """The parent side of the MODEL/CLIP/VAE proxies (the pack host's ``ExportPolicy``): only :class:`Exported`
    values cross as remote objects, and only the methods ``METHODS`` names for their kind may be called."""

    def kind_of(self, value: Any) -> str | None:
        return value.kind if isinstance(value, Exported) else None

    def allowed(self, kind: str, method: str) -> bool:
        return method in METHODS.get(kind, ())


EXPORTS = ModelExports()


def kind_of_model(value: Any) -> str | None:
    """``"MODEL"``, ``"CLIP"`` or ``"VAE"`` for a Hearth model value; ``None`` for anything else."""
    from hearth.core.models.model_value import ModelValue  # deferred: imports torch

    if not isinstance(value, ModelValue):
        return None
    if callable(getattr(value, "tokenize", None)):
        return "CLIP"
    if callable(getattr(value, "decode", None)) and callable(getattr(value, "encode", None)):
        return "VAE"
    return "MODEL"


def lend(value: Any, pack: IsolatedPack | None = None, device: Any = None, *, functions: bool = False) -> Any:
    """``value`` as it crosses to ``pack``'s host: containers copied, tensors as they are (moved to the CPU when
    on the GPU), Hearth's model values as :class:`Exported` handles with their documented methods, and any other
    object as a handle the pack may only hand back. With ``functions`` (the arguments Hearth's sampler passes a
    patch function: ``apply_model``...), functions cross as handles the pack may call; a node's inputs never do."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: lend(v, pack, device, functions=functions) for k, v in value.items()}
    if isinstance(value, list):
        return [lend(v, pack, device, functions=functions) for v in value]
    if isinstance(value, tuple):
        return tuple(lend(v, pack, device, functions=functions) for v in value)
    module = type(value).__module__
    if module.startswith("numpy") or (module.startswith("torch") and hasattr(value, "device")):
        return on_cpu(value)
    if isinstance(value, Exported) or is_host_value(value):
        return value
    if isinstance(value, HostCallback) and value.pack is pack:
        return value.fn  # the pack's own function, back home
    kind = kind_of_model(value)
    if kind is not None:
        return Exported(value, kind, pack, device)
    if callable(getattr(value, "percent_to_sigma", None)) and callable(getattr(value, "timestep", None)):
        return Exported(value, "MODEL_SAMPLING", pack, device)
    return Exported(value, "FUNCTION" if functions and callable(value) else "OBJECT", pack, device)


# The HostValue classes of the pack host APIs in use (each IsolatedPack adds its API's): a value of a type a pack
# defines, which stays in that pack's host.
HOST_VALUE_TYPES: set[type] = set()


def is_host_value(value: Any) -> bool:
    return isinstance(value, tuple(HOST_VALUE_TYPES))


def unwrap(value: Any) -> Any:
    """``value`` with every :class:`Exported` replaced by the value it lends (what comes back from a host)."""
    if isinstance(value, Exported):
        return value.value
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(unwrap(v) for v in value)
    return value
