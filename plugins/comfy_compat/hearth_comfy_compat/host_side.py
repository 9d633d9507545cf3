"""The inside of a ComfyUI pack's host: :func:`entry` loads one pack in the isolated pack host, as Hearth would.

A pack host (``hearth.sandbox``'s, see :mod:`hearth_comfy_compat.pack_hosts`) imports this module after its
isolation is in place and calls :func:`entry` with the JSON-able ``args`` :mod:`hearth_comfy_compat.isolated`
built. It makes a small Runtime with the parent's model, input, output and temp folders (so ``folder_paths`` and
friends answer as in Hearth), serves ComfyUI's module names, runs the pack's ``prestartup_script.py`` and imports
the pack exactly as :class:`~hearth_comfy_compat.loader.CustomNodesLoader` does (V3 ``comfy_entrypoint`` packs
too), then returns its node classes for the host to describe.

Bridges, so a node in the host behaves as one in Hearth's process:

* progress (``comfy.utils.ProgressBar``, ``hearth.core.context.progress``, the sampler callback) becomes a
  ``progress`` event, or a ``preview`` event carrying the encoded image, on the running call;
* ``PromptServer.instance.send_sync`` / ``send`` become ``message`` events the parent sends on to its clients;
* ``comfy.model_management``'s interrupt checks read the host's interrupt flag;
* MODEL, CLIP and VAE values arrive as proxies whose documented methods (clone, weight patches, model options,
  encode and decode, model_sampling, the UNet config...) run on the real value in Hearth's process; anything deeper
  (``model.model.diffusion_model``) and ``add_object_patch`` raise the host's ``TrustRequired``: the pack must be
  trusted to run in-process;
* functions the pack sets on a MODEL (``set_model_*`` patches) stay here: Hearth's sampler calls them back through
  the hidden ``__hearth_callbacks__`` entry; ``comfy.sample.sample``, ``nodes.common_ksampler`` and
  ``comfy.sd.load_lora_for_models`` on Hearth's values are done by Hearth's process;
* the hidden ``__hearth_pack_info__`` entry tells ``comfy plugins`` which ComfyUI internals the pack used that
  Hearth lacks.

What a pack registers in ``folder_paths`` here (its own model kinds) stays in its host: Hearth's process does not
list folders an untrusted pack names.
"""

from __future__ import annotations

import inspect
import io
import logging
import threading
from pathlib import Path
from typing import Any

from hearth.core import context
from hearth.core.context import ExecutionContext, Folders
from hearth.core.model_folders import ModelFolders
from hearth.core.nodes import portable_input_types, portable_return_types
from hearth.core.runtime import Runtime, RuntimeOptions
from hearth_comfy_compat.pack_hosts import host_runtime, set_host_runtime

log = logging.getLogger("hearth.custom_nodes.host")

# Kept for the host's life: the context variables set in entry() must not be reset.
_state: dict[str, Any] = {}


class PackImportError(ImportError):
    """The pack failed to import (or its entry point failed) inside its host; the message is the loader's."""


def entry(args: dict[str, Any], host: Any) -> dict[str, Any]:
    """Load the pack ``args["pack"]`` at ``args["path"]``; returns ``{"nodes", "display", "web_directory",
    "notes"}`` as the pack host's entry contract asks."""
    # Deferred: the loader imports this plugin's hooks.
    from hearth_comfy_compat.loader import CustomNodesLoader

    set_host_runtime(host)
    rt = host_runtime()
    runtime = _runtime(args)
    _activate(runtime)
    _bridge_server(rt)
    _register_proxies(rt)
    name, path = str(args["pack"]), Path(args["path"])
    loader = CustomNodesLoader([Path(p) for p in args.get("custom_nodes") or [path.parent]])
    [record] = loader.load_packs([(name, path)], runtime.plugins)
    if record.error:
        raise PackImportError(f"{record.error}\n{record.traceback or ''}".strip())
    nodes = {d.name: host_node(d.cls) for d in loader.definitions}
    nodes[CALLBACKS] = _Callbacks
    nodes[PACK_INFO] = _PackInfo
    display = {d.name: d.display_name for d in loader.definitions if d.display_name}
    web = loader.web_directories.get(name)
    notes = list(record.notes)
    routes = _routes_added()
    if routes:
        notes.append(f"its {routes} server route(s) are not served while it runs isolated; trust it to serve them")
    return {"nodes": nodes, "display": display, "web_directory": str(web) if web else None, "notes": notes,
            "version": record.version}


# -- functions the pack handed Hearth (model patches), called back from Hearth's process --------------------

CALLBACKS = "__hearth_callbacks__"  # not a node: isolated.py leaves it out of the registry


class _Callbacks:
    """What Hearth's process calls when a sampler runs a function this pack set on a MODEL (``fn`` arrives as the
    pack's own function: it never left the host)."""

    CATEGORY = ""
    RETURN_TYPES = ()
    FUNCTION = "invoke"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def invoke(self, fn: Any, args: Any = (), kwargs: Any = None) -> Any:
        return _outgoing(fn(*(args or ()), **(kwargs or {})))


PACK_INFO = "__hearth_pack_info__"  # not a node either: what the pack used of ComfyUI that Hearth lacks


class _PackInfo:
    """What ``comfy plugins`` asks a pack host: the ComfyUI internals the pack used that Hearth lacks (so far)."""

    CATEGORY = ""
    RETURN_TYPES = ()
    FUNCTION = "info"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def info(self) -> dict[str, Any]:
        import hearth_comfy_compat as comfy_compat

        return {"missing": {pack: sorted(names) for pack, names in comfy_compat.missing_names().items()}}


# -- node classes as the host serves them -------------------------------------------------------------------------

BLOCKER = "__hearth_execution_blocker__"  # an ExecutionBlocker output, as it crosses (isolated.py turns it back)
_COPIED = ("RETURN_TYPES", "RETURN_NAMES", "CATEGORY", "OUTPUT_NODE", "INPUT_IS_LIST", "OUTPUT_IS_LIST",
           "NOT_IDEMPOTENT", "DESCRIPTION", "OUTPUT_TOOLTIPS", "DEPRECATED", "EXPERIMENTAL", "SEARCH_ALIASES",
           "DISPLAY_NAME", "API_NODE")


def host_node(cls: type) -> type:
    """A class the host describes and calls in place of the pack's ``cls``: the same attributes, and methods
    that call the pack's the way Hearth's executor does (``IS_CHANGED`` and ``VALIDATE_INPUTS`` on the class,
    which V3 nodes provide only there) and turn Hearth values that cannot cross as they are (an
    ``ExecutionBlocker``) into their crossing form."""
    function = str(cls.FUNCTION)  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {attr: getattr(cls, attr) for attr in _COPIED if hasattr(cls, attr)}
    # Types cross as plain data that keeps its meaning (an "any type" object as "*", an open section recorded as
    # one); the pack's own class keeps its objects. Each re-read of INPUT_TYPES goes through here too.
    namespace.update(FUNCTION=function, __module__=cls.__module__, __qualname__=cls.__qualname__,
                     INPUT_TYPES=classmethod(lambda _c: portable_input_types(
                         cls.INPUT_TYPES())))  # type: ignore[attr-defined]
    if isinstance(namespace.get("RETURN_TYPES"), (list, tuple)):
        namespace["RETURN_TYPES"] = portable_return_types(namespace["RETURN_TYPES"])

    def __init__(self: Any) -> None:
        self.inner = cls()

    if inspect.iscoroutinefunction(getattr(cls, function)):
        async def run(self: Any, **kwargs: Any) -> Any:
            return _outgoing(await getattr(self.inner, function)(**kwargs))
    else:
        def run(self: Any, **kwargs: Any) -> Any:
            result = getattr(self.inner, function)(**kwargs)
            return _awaited(result) if inspect.isawaitable(result) else _outgoing(result)

    namespace.update(__init__=__init__)
    namespace[function] = run
    for name in ("IS_CHANGED", "VALIDATE_INPUTS"):
        target = getattr(cls, name, None)
        if callable(target):
            namespace[name] = classmethod(_class_method(target))
    if callable(getattr(cls, "check_lazy_status", None)):
        namespace["check_lazy_status"] = lambda self, **kwargs: self.inner.check_lazy_status(**kwargs)
    return type(cls.__name__, (), namespace)


def _class_method(target: Any) -> Any:
    def forward(_cls: Any, **kwargs: Any) -> Any:
        return target(**kwargs)

    first = inspect.Parameter("cls", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        params = [inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]
    forward.__signature__ = inspect.Signature([first, *params])  # type: ignore[attr-defined]
    return forward


async def _awaited(result: Any) -> Any:
    return _outgoing(await result)


def _outgoing(result: Any) -> Any:
    """A node's result with ExecutionBlockers in their crossing form."""
    from hearth.core.types import ExecutionBlocker

    def convert(value: Any) -> Any:
        return {BLOCKER: value.message} if isinstance(value, ExecutionBlocker) else value

    if isinstance(result, ExecutionBlocker):
        return convert(result)
    if isinstance(result, tuple):
        return tuple(convert(v) for v in result)
    if isinstance(result, dict) and isinstance(result.get("result"), tuple):
        return {**result, "result": tuple(convert(v) for v in result["result"])}
    return result


# -- the Runtime in the host ------------------------------------------------------------------------------------


def _runtime(args: dict[str, Any]) -> Runtime:
    """A Runtime over the parent's folders, with only the parent's first-party plugins (samplers, families)."""
    folders = ModelFolders(args.get("models_dir") or "models")
    extensions = args.get("extensions") or {}
    for kind, paths in (args.get("model_folders") or {}).items():
        for path in paths:
            folders.add(kind, path, extensions=extensions.get(kind))
    options = RuntimeOptions.of(models_dir=folders.base, output=args["output"], input=args["input"],
                                temp=args["temp"], environ={}, allow=list(args.get("plugins") or []))
    return Runtime(options, model_folders=folders)


def _activate(runtime: Runtime) -> None:
    """Make ``runtime`` and the host's node context current for the rest of the host's life (the host serves its
    calls in this same thread)."""
    activation = runtime.activate()
    activation.__enter__()  # held in _state: a dropped activation would reset the context variable when collected
    ctx = _host_context(runtime.folders)
    context.enter(ctx)
    _state.update(runtime=runtime, context=ctx, activation=activation)


class _HostInterrupt:
    """The interrupt flag of the host's node context: set when the parent interrupted the running call (or a
    pack asked for it, ComfyUI's ``interrupt_current_processing``)."""

    def __init__(self) -> None:
        self._own = threading.Event()

    def is_set(self) -> bool:
        return self._own.is_set() or bool(host_runtime().interrupted())

    def set(self) -> None:
        self._own.set()

    def clear(self) -> None:
        self._own.clear()

    def wait(self, timeout: float | None = None) -> bool:
        return self._own.wait(timeout) or self.is_set()


def _host_context(folders: Folders) -> ExecutionContext:
    return ExecutionContext("", "", "", "", folders, _emit, _HostInterrupt())  # type: ignore[arg-type]


def _emit(event: str, data: dict[str, Any]) -> None:
    """The node context's events, sent to the running call in the parent."""
    rt = host_runtime()
    if event == "progress":
        out = {"value": _number(data.get("value")), "max": _number(data.get("max"))}
        preview = data.get("preview")
        encoded = _encode_preview(preview) if preview is not None else None
        if encoded is not None:
            rt.emit("preview", {**out, "mime": encoded[0], "image": encoded[1]})
        else:
            rt.emit("progress", out)
        return
    rt.emit("message", {"event": str(event), "data": _plain(data), "sid": None})


def _number(value: Any) -> float | int:
    try:
        return value if isinstance(value, int) else float(value)
    except (TypeError, ValueError):
        return 0


def _encode_preview(preview: Any) -> tuple[str, bytes] | None:
    """(mime, bytes) of a preview: ComfyUI's ``(format, PIL image, max size)``, a PIL image, or PNG/JPEG bytes."""
    if isinstance(preview, (bytes, bytearray)):
        data = bytes(preview)
        return ("image/png", data) if data.startswith(b"\x89PNG") else \
            ("image/jpeg", data) if data.startswith(b"\xff\xd8") else None
    fmt, image, size = "JPEG", preview, None
    if isinstance(preview, (tuple, list)) and len(preview) >= 2:
        fmt, image = str(preview[0]).upper(), preview[1]
        size = preview[2] if len(preview) > 2 else None
    if not hasattr(image, "save") or fmt not in ("JPEG", "PNG", "WEBP"):
        return None
    if size:
        image = image.copy()
        image.thumbnail((int(size), int(size)))
    buffer = io.BytesIO()
    (image.convert("RGB") if fmt == "JPEG" else image).save(buffer, format=fmt)
    return f"image/{fmt.lower()}", buffer.getvalue()


def _plain(value: Any) -> Any:
    """``value`` with what cannot cross the boundary (objects of other types) replaced by their ``repr``."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)


# -- PromptServer ---------------------------------------------------------------------------------------------


class _HostTransport:
    """What ``PromptServer.instance`` sends through in the host: each message goes to the parent's clients."""

    loop = None

    def publish(self, event: str, data: Any, sid: str | None) -> None:
        host_runtime().emit("message", {"event": str(event), "data": _plain(data), "sid": sid})

    def publish_binary(self, event: int, data: Any, sid: str | None) -> None:
        host_runtime().emit("message", {"event": int(event), "data": bytes(data), "sid": sid})

    def client_of(self, prompt_id: str | None) -> str | None:
        return None


def _bridge_server(rt: Any) -> None:
    from hearth_comfy_compat.server import PromptServer

    PromptServer.instance.attach(_HostTransport())  # type: ignore[arg-type]


def _routes_added() -> int:
    from hearth_comfy_compat.server import PromptServer

    return len(PromptServer.instance.route_definitions())


# -- MODEL, CLIP and VAE proxies ---------------------------------------------------------------------------------


def _trust_required(message: str) -> Exception:
    return host_runtime().TrustRequired(message)


class _Deep:
    """An attribute path below a proxied value (``model.model``): any use of it raises TrustRequired naming the
    whole path, since the object lives in Hearth's process and only documented methods cross."""

    def __init__(self, path: str) -> None:
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Deep(f"{self._path}.{name}")

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise _trust_required(f"it uses {self._path}, which lives in Hearth's process")

    __call__ = __getitem__ = __setitem__ = __iter__ = __len__ = __bool__ = __setattr__ = _refuse
    __add__ = __mul__ = __eq__ = __contains__ = __float__ = __int__ = __index__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __ne__ = __neg__ = __abs__ = __round__ = _refuse
    __sub__ = __truediv__ = __floordiv__ = __pow__ = __matmul__ = __mod__ = _refuse
    __radd__ = __rsub__ = __rmul__ = __rtruediv__ = __rpow__ = __rmatmul__ = _refuse
    __hash__ = None  # type: ignore[assignment]


class _Proxy:
    """A MODEL/CLIP/VAE of Hearth's process, seen from the host: the methods named in ``FORWARDED`` run on the
    real value in the parent; the others are refused with TrustRequired naming them."""

    KIND = ""
    HEARTH_LENT = True  # comfy.model_management leaves it to Hearth's process (load_models_gpu...)
    FORWARDED: frozenset[str] = frozenset()
    # Methods that would put an object of the pack's inside Hearth's own machinery: refused, naming them.
    REFUSED: frozenset[str] = frozenset()

    def __init__(self, remote: Any) -> None:
        object.__setattr__(self, "_remote", remote)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self.FORWARDED:
            return lambda *args, **kwargs: self._remote.call(name, *args, **kwargs)
        if name in self.REFUSED:
            def refuse(*args: Any, **kwargs: Any) -> Any:
                raise _trust_required(f"it uses {self.KIND}.{name}, whose object would live in Hearth's process")
            return refuse
        return _Deep(f"{self.KIND}.{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise _trust_required(f"it sets {self.KIND}.{name} on a value that lives in Hearth's process")

    def hearth_lora(self, model: Any, clip: Any, lora: dict[str, Any], strength_model: float,
                    strength_clip: float) -> tuple[Any, Any]:
        """comfy.sd.load_lora_for_models on values of Hearth's: the LoRA's tensors cross, Hearth patches clones."""
        return tuple(self._remote.call("hearth_lora", model, clip, lora, strength_model, strength_clip))

    def __repr__(self) -> str:
        return f"<{self.KIND} of Hearth's process (isolated pack's view)>"


# ModelPatcher setters that hand Hearth a function: the parent records a callback into this host on its clone.
CALLBACK_SETTERS = (
    "set_model_unet_function_wrapper", "set_model_patch", "set_model_patch_replace", "set_model_attn1_patch",
    "set_model_attn2_patch", "set_model_attn1_output_patch", "set_model_attn2_output_patch",
    "set_model_attn1_replace", "set_model_attn2_replace", "set_model_input_block_patch",
    "set_model_input_block_patch_after_skip", "set_model_output_block_patch", "set_model_sampler_cfg_function",
    "set_model_sampler_post_cfg_function", "set_model_sampler_pre_cfg_function", "set_model_denoise_mask_function",
)

# The methods a host may call on each kind of value Hearth lends it (the parent's isolated.Exported defines each;
# its ExportPolicy allows exactly these). "hearth_*" are the parent's answers to attributes (model_options, devices).
METHODS: dict[str, frozenset[str]] = {
    "MODEL": frozenset({"clone", "add_patches", "is_clone", "model_size", "memory_bytes", "hearth_model_options",
                        "hearth_device", "hearth_weight_keys", "hearth_weights", "get_model_object",
                        "hearth_lora", "hearth_unet_config", "hearth_sample", "hearth_latent",
                        "hearth_latent_family", *CALLBACK_SETTERS}),
    "CLIP": frozenset({"clone", "tokenize", "encode_from_tokens", "encode_from_tokens_scheduled", "add_patches",
                       "clip_layer", "model_size", "memory_bytes", "hearth_device", "hearth_weight_keys",
                       "hearth_weights", "hearth_lora"}),
    "VAE": frozenset({"encode", "decode", "encode_tiled", "decode_tiled", "spacial_compression_encode",
                      "spacial_compression_decode", "clone", "model_size", "memory_bytes", "hearth_device"}),
    "CLIP_TOKENS": frozenset(),
    "MODEL_SAMPLING": frozenset({"timestep", "sigma", "percent_to_sigma", "calculate_input", "calculate_denoised",
                                 "noise_scaling", "hearth_attr"}),
    "FUNCTION": frozenset({"hearth_call"}),  # a function of Hearth's (a sampler's apply_model) the pack may call
    "OBJECT": frozenset(),  # any other value of Hearth's: the pack may hold it and hand it back, not look inside
}


# Weights cross in batches: a message carries a bounded number of tensors (each one descriptor).
WEIGHTS_PER_MESSAGE = 128


class _Weights(_Proxy):
    """``get_key_patches`` and ``model_state_dict``, fetched from Hearth's process a batch of weights at a time."""

    def get_key_patches(self, filter_prefix: str | None = None) -> dict[str, list[Any]]:
        return self._weights(filter_prefix, patched=True)

    def model_state_dict(self, filter_prefix: str | None = None) -> dict[str, Any]:
        return {key: value[0] for key, value in self._weights(filter_prefix, patched=False).items()}

    def _weights(self, filter_prefix: str | None, *, patched: bool) -> dict[str, list[Any]]:
        keys = list(self._remote.call("hearth_weight_keys", filter_prefix))
        found: dict[str, list[Any]] = {}
        for start in range(0, len(keys), WEIGHTS_PER_MESSAGE):
            found.update(self._remote.call("hearth_weights", keys[start:start + WEIGHTS_PER_MESSAGE], patched))
        return found


class ModelProxy(_Weights):
    KIND = "MODEL"
    FORWARDED = METHODS["MODEL"]
    REFUSED = frozenset({"add_object_patch"})

    @property
    def model_options(self) -> dict[str, Any]:
        """A copy of the value's options (what crosses: numbers, strings, lists, dicts)."""
        return self._remote.call("hearth_model_options")

    @property
    def load_device(self) -> Any:
        return _device(self._remote.call("hearth_device", "load"))

    @property
    def offload_device(self) -> Any:
        return _device(self._remote.call("hearth_device", "offload"))

    def model_patches_to(self, device: Any) -> None:
        """Patches stay where Hearth's model manager puts them; nothing to move from here."""

    def get_model_object(self, name: str) -> Any:
        """``model_sampling`` (its documented methods run in Hearth's process); nothing else of the model."""
        if name != "model_sampling":
            raise _trust_required(f"it uses MODEL.get_model_object({name!r}), which lives in Hearth's process")
        return self._remote.call("get_model_object", name)

    @property
    def model_sampling(self) -> Any:  # what packs reach as model.model.model_sampling, offered directly too
        return self.get_model_object("model_sampling")

    def hearth_sample(self, how: str, kwargs: dict[str, Any]) -> Any:
        """``nodes.common_ksampler`` / ``comfy.sample.sample`` on this model: Hearth's process samples (a callback
        the pack passes is called back here at each step)."""
        return self._remote.call("hearth_sample", how, kwargs)

    @property
    def model(self) -> Any:
        """``model.model``: only its ``model_config.unet_config`` (a copy) and ``model_sampling``; the network
        itself is refused."""
        return _ModelView(self)


class _ModelView:
    """What an isolated pack may read of ``MODEL.model``; anything else is refused naming its path."""

    def __init__(self, proxy: ModelProxy) -> None:
        object.__setattr__(self, "_proxy", proxy)

    @property
    def model_config(self) -> Any:
        return _ConfigView(self._proxy)

    @property
    def model_sampling(self) -> Any:
        return self._proxy.get_model_object("model_sampling")

    @property
    def latent_format(self) -> Any:
        """Only its ``family`` (what latent previewers colour by)."""
        return _LatentFormatView(self._proxy._remote.call("hearth_latent_family"))

    def process_latent_in(self, latent: Any) -> Any:
        return self._proxy._remote.call("hearth_latent", "in", latent)

    def process_latent_out(self, latent: Any) -> Any:
        return self._proxy._remote.call("hearth_latent", "out", latent)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Deep(f"MODEL.model.{name}")


class _LatentFormatView:
    def __init__(self, family: str) -> None:
        self.family = family

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Deep(f"MODEL.model.latent_format.{name}")


class _ConfigView:
    def __init__(self, proxy: ModelProxy) -> None:
        object.__setattr__(self, "_proxy", proxy)

    @property
    def unet_config(self) -> dict[str, Any]:
        """A copy of the UNet's shape (FreeU-style packs read ``model_channels``)."""
        return self._proxy._remote.call("hearth_unet_config")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Deep(f"MODEL.model.model_config.{name}")


class SamplingProxy(_Proxy):
    """A model's ``model_sampling`` (sigmas and timesteps): its methods and numbers come from Hearth's process."""

    KIND = "MODEL_SAMPLING"
    FORWARDED = METHODS["MODEL_SAMPLING"]

    @property
    def sigma_min(self) -> Any:
        return self._remote.call("hearth_attr", "sigma_min")

    @property
    def sigma_max(self) -> Any:
        return self._remote.call("hearth_attr", "sigma_max")

    @property
    def sigma_data(self) -> Any:
        return self._remote.call("hearth_attr", "sigma_data")

    @property
    def sigmas(self) -> Any:
        return self._remote.call("hearth_attr", "sigmas")


class ClipProxy(_Weights):
    KIND = "CLIP"
    FORWARDED = METHODS["CLIP"]

    @property
    def load_device(self) -> Any:
        return _device(self._remote.call("hearth_device", "load"))

    def encode(self, text: str) -> Any:
        return self._remote.call("encode_from_tokens", self._remote.call("tokenize", text), return_pooled=True)


class VaeProxy(_Proxy):
    KIND = "VAE"
    FORWARDED = METHODS["VAE"]

    @property
    def downscale_ratio(self) -> Any:
        return self._remote.call("spacial_compression_encode")

    @property
    def upscale_ratio(self) -> Any:
        return self._remote.call("spacial_compression_decode")


class FunctionProxy(_Proxy):
    """A function of Hearth's process (the ``apply_model`` a UNet wrapper gets): calling it runs it there."""

    KIND = "FUNCTION"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote.call("hearth_call", *args, **kwargs)


class ObjectProxy(_Proxy):
    """Any other value of Hearth's process: the pack can pass it on (it arrives as the original), not use it."""

    KIND = "OBJECT"


class TokensProxy(_Proxy):
    """CLIP tokens, kept in Hearth's process: the pack hands them back to ``encode_from_tokens``."""

    KIND = "CLIP_TOKENS"


def _device(name: Any) -> Any:
    import torch

    return torch.device(str(name))


PROXIES: dict[str, type[_Proxy]] = {"MODEL": ModelProxy, "CLIP": ClipProxy, "VAE": VaeProxy,
                                    "CLIP_TOKENS": TokensProxy, "FUNCTION": FunctionProxy, "OBJECT": ObjectProxy,
                                    "MODEL_SAMPLING": SamplingProxy}


def _register_proxies(rt: Any) -> None:
    for kind, cls in PROXIES.items():
        rt.register_proxy(kind, cls)
