"""``comfy.model_patcher``: ``ModelPatcher``, the class packs subclass, construct around a network, and test MODEL
values with.

Every MODEL Hearth makes (a :class:`hearth.core.models.ModelValue` with the MODEL protocol: SD, Wan...), and the
proxy an isolated pack's host sees for one, is a ``ModelPatcher`` for ``isinstance`` (``issubclass`` too), though
Hearth's families do not inherit from this class; they already offer its surface (clone, weight patches,
``model_options`` and the ``set_model_*`` family, object patches, devices, and the registries of wrappers,
callbacks, attachments, additional models and injections). A pack's subclass of ``ModelPatcher`` is an ordinary
class: ``isinstance`` with it is true only for its own instances.

``ModelPatcher(model, load_device, offload_device, size=0, weight_inplace_update=False)`` is a ``ModelValue`` over
a :class:`hearth.core.models.PatchedModel` of ``model``: Hearth's model manager loads it (within its memory budget,
patches applied from a backup, taken off bit for bit), and it keeps ComfyUI's own ``patches`` beside
(``{key: [(strength_patch, value, strength_model, offset, function)]}``, every kind ``comfy.lora.calculate_weight``
computes). When ``model`` is a ``comfy.model_base.BaseModel`` (or answers like one), the patcher also has Hearth's
MODEL protocol, so Hearth's samplers sample it: each evaluation runs the ``model_function_wrapper``, the patcher's
and the options' ``APPLY_MODEL`` / ``DIFFUSION_MODEL`` wrappers of ``comfy.patcher_extension``, with its object
patches and injections on (for that evaluation: the network is shared by every clone, so they come off after it,
where ComfyUI keeps them on while the model is loaded), and ``ON_PRE_RUN`` callbacks run when sampling prepares
the model.

``ModelPatcher(model.model, ...)`` on a Hearth MODEL (whose ``model.model`` is its family's view, not a network)
gives a clone of that MODEL when the view names it as ``current_patcher``, and otherwise fails saying so.

What differs from ComfyUI: loading is whole (no lowvram per-layer streaming: ``lowvram_model_memory`` is ignored),
weight hooks (``comfy.hooks`` weight keyframes) are not applied, and ``patch_weight_to_device`` is not offered.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import torch

from hearth.core.models import ModelValue, PatchedModel, default_manager
from hearth_comfy_compat.comfy_utils import get_attr, set_attr
from hearth_comfy_compat.hook import lacking

from .patcher_extension import (  # PatcherInjection and WrappersMP: packs import them from this module too
    CallbacksMP,
    PatcherInjection,
    WrappersMP,
    copy_nested_dicts,
    merge_nested_dicts,
)

__all__ = ["CallbacksMP", "ModelPatcher", "PatcherInjection", "WrappersMP", "create_hook_patches_clone",
           "create_model_options_clone", "set_model_options_patch_replace", "set_model_options_post_cfg_function",
           "set_model_options_pre_cfg_function", "wipe_lowvram_weight"]


# -- model_options helpers (ComfyUI's module-level functions) -----------------------------------------------------

def set_model_options_patch_replace(model_options: dict[str, Any], patch: Callable[..., Any], name: str,
                                    block_name: str, number: int, transformer_index: int | None = None
                                    ) -> dict[str, Any]:
    """``model_options`` with ``patch`` replacing block ``(block_name, number[, transformer_index])`` of ``name``;
    the dicts on the way are copied, so options shared with another model are left alone."""
    options = dict(model_options.get("transformer_options", {}))
    replace = dict(options.get("patches_replace", {}))
    replace[name] = dict(replace.get(name, {}))
    key = (block_name, number) if transformer_index is None else (block_name, number, transformer_index)
    replace[name][key] = patch
    options["patches_replace"] = replace
    model_options["transformer_options"] = options
    return model_options


def set_model_options_post_cfg_function(model_options: dict[str, Any], post_cfg_function: Callable[..., Any],
                                        disable_cfg1_optimization: bool = False) -> dict[str, Any]:
    model_options["sampler_post_cfg_function"] = [*model_options.get("sampler_post_cfg_function", []),
                                                  post_cfg_function]
    if disable_cfg1_optimization:
        model_options["disable_cfg1_optimization"] = True
    return model_options


def set_model_options_pre_cfg_function(model_options: dict[str, Any], pre_cfg_function: Callable[..., Any],
                                       disable_cfg1_optimization: bool = False) -> dict[str, Any]:
    model_options["sampler_pre_cfg_function"] = [*model_options.get("sampler_pre_cfg_function", []),
                                                 pre_cfg_function]
    if disable_cfg1_optimization:
        model_options["disable_cfg1_optimization"] = True
    return model_options


def create_model_options_clone(orig_model_options: dict[str, Any]) -> dict[str, Any]:
    return copy_nested_dicts(orig_model_options)


def create_hook_patches_clone(orig_hook_patches: dict[Any, Any]) -> dict[Any, Any]:
    return {ref: {key: list(patches) for key, patches in by_key.items()} for ref, by_key in orig_hook_patches.items()}


def wipe_lowvram_weight(m: torch.nn.Module) -> None:
    """Take a layer's on-the-fly weight patches off (``comfy.ops`` layers' ``weight_function``...)."""
    if hasattr(m, "prev_comfy_cast_weights"):
        m.comfy_cast_weights = m.prev_comfy_cast_weights
        del m.prev_comfy_cast_weights
    if hasattr(m, "weight_function"):
        m.weight_function = []
        m.bias_function = []


def _identity(tensor: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return tensor


def _cond_or_uncond(cond_index: Any, batch: int) -> list[int]:
    # Which chunk of the batch is which conditioning (0 positive, 1 negative): ComfyUI's cond_or_uncond.
    if cond_index is None:
        return [0]
    indices = [int(i) for i in torch.as_tensor(cond_index).reshape(-1).tolist()]
    chunks: list[int] = []
    for index in indices:
        if not chunks or chunks[-1] != index:
            chunks.append(index)
    return chunks


class _PatcherMeta(type):
    """Makes Hearth's MODEL values instances of ``ModelPatcher`` itself (not of a pack's subclass of it)."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return type.__instancecheck__(cls, obj) or (cls.__dict__.get("_hearth_models", False)
                                                    and (_is_hearth_model(type(obj)) or _is_lent_model(obj)))

    def __subclasscheck__(cls, sub: type) -> bool:
        return type.__subclasscheck__(cls, sub) or (cls.__dict__.get("_hearth_models", False)
                                                    and isinstance(sub, type) and _is_hearth_model(sub))


def _is_hearth_model(kind: type) -> bool:
    return issubclass(kind, ModelValue) and callable(getattr(kind, "denoise", None))


def _is_lent_model(obj: Any) -> bool:
    # In an isolated pack's host a MODEL of Hearth's process arrives as a proxy that says what it lends.
    kind = type(obj)
    return getattr(kind, "HEARTH_LENT", False) is True and getattr(kind, "KIND", None) == "MODEL"


class ModelPatcher(ModelValue, metaclass=_PatcherMeta):
    """ComfyUI's ModelPatcher on Hearth's machinery (see the module docstring).

    :param model: the network (a ``torch.nn.Module``; a ``comfy.model_base.BaseModel`` to be sampled).
    :param load_device: where it computes; ``offload_device``: where its weights wait.
    :param size: its size in bytes, when known (else measured).
    """

    _hearth_models = True
    patches: Any = None  # an instance attribute (ComfyUI's form): shadows ModelValue's read-only property

    def __new__(cls, model: Any = None, *args: Any, **kwargs: Any) -> Any:
        # Packs re-wrap a MODEL's network: ModelPatcher(model.model, device, offload). For a Hearth MODEL that is
        # its family's view, not a network: a new patcher on the same weights is a clone of the MODEL itself.
        from .model_base import _is_hearth_view

        if model is not None and _is_hearth_view(model):
            owner = getattr(model, "current_patcher", None)
            if isinstance(owner, ModelValue) and _is_hearth_model(type(owner)):
                return owner.clone()
            raise lacking("comfy.model_patcher.ModelPatcher(model.model)",
                          "a Hearth MODEL's model.model is a view of the model, not its network; use the MODEL "
                          "itself, or model.clone()")
        return super().__new__(cls)

    def __init__(self, model: torch.nn.Module, load_device: Any, offload_device: Any, size: int = 0,
                 weight_inplace_update: bool = False) -> None:
        def estimate(input_shape: tuple[int, ...] | None, dtype: torch.dtype | None) -> int:
            if input_shape is None or not hasattr(model, "memory_required"):
                return 0
            return int(model.memory_required(input_shape=tuple(input_shape)))

        super().__init__(PatchedModel(model, name=type(model).__name__, load_device=load_device,
                                      offload_device=offload_device, memory_estimate=estimate))
        self.size = size
        self.model = model
        if getattr(model, "device", None) is None:
            model.device = self.offload_device
        for name, default in (("model_loaded_weight_memory", 0), ("lowvram_patch_counter", 0),
                              ("model_lowvram", False), ("current_weight_patches_uuid", None)):
            if not hasattr(model, name):
                setattr(model, name, default)
        self.patches: dict[str, list[tuple[Any, ...]]] = {}
        self.backup: dict[str, Any] = {}
        self.object_patches_backup: dict[str, Any] = {}
        self.weight_inplace_update = weight_inplace_update
        self.patches_uuid = uuid.uuid4()
        self.parent: ModelPatcher | None = None
        self.hook_patches: dict[Any, Any] = {}
        self.hook_patches_backup: dict[Any, Any] = {}
        self.hook_backup: dict[str, Any] = {}
        self.cached_hook_patches: dict[Any, Any] = {}
        self.current_hooks: Any = None
        self.forced_hooks: Any = None
        self.is_clip = False
        self.hook_mode: Any = None

    # -- sizes, devices, dtypes ----------------------------------------------------------------------------------

    def model_size(self) -> int:
        if self.size > 0:
            return self.size
        self.size = super().model_size()
        return self.size

    def loaded_size(self) -> int:
        """Bytes of the weights on the load device now (all or nothing: Hearth loads a model whole)."""
        return self.model_size() if default_manager().is_loaded(self.patcher) else 0

    def lowvram_patch_counter(self) -> int:
        return 0

    def memory_required(self, input_shape: tuple[int, ...]) -> int:
        return self.model.memory_required(input_shape=input_shape)

    def model_dtype(self) -> torch.dtype | None:
        if hasattr(self.model, "get_dtype"):
            return self.model.get_dtype()
        parameter = next(self.model.parameters(), None)
        return None if parameter is None else parameter.dtype

    def set_model_compute_dtype(self, dtype: torch.dtype) -> None:
        """Compute in ``dtype`` (ComfyUI's ``manual_cast_dtype`` object patch, read by ``BaseModel``)."""
        self.add_object_patch("manual_cast_dtype", dtype)

    # -- cloning -------------------------------------------------------------------------------------------------

    def clone(self) -> ModelPatcher:
        """A patcher on the same weights with copies of the patches, options, wrappers, callbacks, injections
        and attachments (an attachment with ``on_model_patcher_clone`` gives its own copy); runs ``ON_CLONE``."""
        if "patches" not in vars(self):
            # A pack turned a MODEL of Hearth's into its subclass by assigning __class__ (GGUF's
            # GGUFModelPatcher.clone does, to reuse ModelPatcher.clone): the value has no ModelPatcher state and,
            # its family's class gone, no evaluation either.
            raise lacking(
                "comfy.model_patcher.ModelPatcher.clone on a MODEL Hearth loaded",
                f"the pack made it a {type(self).__name__} by assigning __class__, and Hearth's models are not "
                f"ModelPatcher objects (they only answer isinstance); use Hearth's loader nodes for this model")
        twin = super().clone()
        twin.patches = {key: list(patches) for key, patches in self.patches.items()}
        twin.parent = self
        twin.hook_patches = create_hook_patches_clone(self.hook_patches)
        twin.hook_patches_backup = create_hook_patches_clone(self.hook_patches_backup)
        twin.cached_hook_patches = dict(self.cached_hook_patches)
        return twin  # ModelValue.clone copied the registries (wrappers, callbacks...) and ran ON_CLONE

    def is_clone(self, other: Any) -> bool:
        return getattr(other, "model", None) is self.model or super().is_clone(other)

    def clone_has_same_weights(self, clone: Any) -> bool:
        if not self.is_clone(clone) or self.hook_patches:
            return False
        if not self.patches and not getattr(clone, "patches", None):
            return True
        return getattr(clone, "patches_uuid", None) == self.patches_uuid

    # -- weight patches ------------------------------------------------------------------------------------------

    def add_patches(self, patches: dict[Any, Any], strength_patch: float = 1.0,
                    strength_model: float = 1.0) -> list[Any]:
        """ComfyUI's weight patches (keys ``"name"`` or ``("name", offset[, function])``; every value kind of
        ``comfy.lora.calculate_weight``); returns the keys the model has. Applied when Hearth loads the model."""
        from .lora import calculate_weight

        known = self.model.state_dict(keep_vars=True).keys()
        added: list[Any] = []
        for k, value in patches.items():
            key, offset, function = (k, None, None) if isinstance(k, str) else (
                k[0], k[1], k[2] if len(k) > 2 else None)
            if key not in known:
                continue

            def patch(weight: torch.Tensor, strength: float, value: Any = value, key: str = key,
                      offset: Any = offset, function: Any = function) -> torch.Tensor:
                return calculate_weight([(strength, value, 1.0, offset, function)], weight, key)

            self.patcher.add_patches({key: patch}, strength_patch, strength_model=strength_model)
            self.patches.setdefault(key, []).append((strength_patch, value, strength_model, offset, function))
            added.append(k)
        self.patches_uuid = uuid.uuid4()
        return added

    def get_key_patches(self, filter_prefix: str | None = None) -> dict[str, list[Any]]:
        """``{key: [(original weight, convert function), *patches]}``, ComfyUI's form for model merging."""
        found = {}
        for key, weight in self.model_state_dict(filter_prefix).items():
            found[key] = [(weight, _identity), *self.patches.get(key, [])]
        return found

    def calculate_weight(self, patches: list[Any], weight: torch.Tensor, key: str,
                         intermediate_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        from .lora import calculate_weight

        return calculate_weight(patches, weight, key, intermediate_dtype=intermediate_dtype)

    # -- object patches and model options ------------------------------------------------------------------------

    def accepts_object_patch(self, name: str) -> bool:
        return True

    def get_model_object(self, name: str) -> Any:
        if name in self.object_patches:
            return self.object_patches[name]
        if name in self.object_patches_backup:
            return self.object_patches_backup[name]
        return get_attr(self.model, name)

    def set_model_sampler_cfg_function(self, sampler_cfg_function: Callable[..., Any],
                                       disable_cfg1_optimization: bool = False) -> None:
        """Also takes the old three-argument form ``fn(cond, uncond, cond_scale)``."""
        try:
            import inspect

            old_style = len(inspect.signature(sampler_cfg_function).parameters) == 3
        except (TypeError, ValueError):
            old_style = False
        function = sampler_cfg_function
        if old_style:
            def function(args: dict[str, Any]) -> Any:
                return sampler_cfg_function(args["cond"], args["uncond"], args["cond_scale"])
        super().set_model_sampler_cfg_function(function, disable_cfg1_optimization)

    def set_model_emb_patch(self, patch: Callable[..., Any]) -> None:
        self.set_model_patch(patch, "emb_patch")

    def set_model_forward_timestep_embed_patch(self, patch: Callable[..., Any]) -> None:
        self.set_model_patch(patch, "forward_timestep_embed_patch")

    def model_patches_to(self, device: Any) -> None:
        """Move the patches of ``model_options`` that are modules (``.to``) to ``device``."""
        options = self.model_options.get("transformer_options", {})
        for patch_list in options.get("patches", {}).values():
            for i, patch in enumerate(patch_list):
                if hasattr(patch, "to"):
                    patch_list[i] = patch.to(device)
        for by_block in options.get("patches_replace", {}).values():
            for block, patch in by_block.items():
                if hasattr(patch, "to"):
                    by_block[block] = patch.to(device)
        wrapper = self.model_options.get("model_function_wrapper")
        if hasattr(wrapper, "to"):
            self.model_options["model_function_wrapper"] = wrapper.to(device)

    def model_patches_models(self) -> list[Any]:
        return []

    # -- loading (through Hearth's model manager) ----------------------------------------------------------------

    def load(self, device_to: Any = None, lowvram_model_memory: int = 0, force_patch_weights: bool = False,
             full_load: bool = False) -> None:
        """Put the weights, with this patcher's patches, on ``device_to`` (default: the load device); runs
        ``ON_LOAD``. On the load device the model manager does it within its budget."""
        with self.use_ejected():
            device = torch.device(device_to) if device_to is not None else self.load_device
            if device == self.load_device:
                self.ensure_loaded()
            else:
                self.patcher.patch_weights()
                self.model.to(device)
            self.model.device = device
            self.model.model_loaded_weight_memory = self.model_size()
            self.model.current_weight_patches_uuid = self.patches_uuid
            for callback in self.get_all_callbacks(CallbacksMP.ON_LOAD):
                callback(self, device_to, lowvram_model_memory, force_patch_weights, full_load)

    def patch_model(self, device_to: Any = None, lowvram_model_memory: int = 0, load_weights: bool = True,
                    force_patch_weights: bool = False) -> torch.nn.Module:
        """Apply the object patches to the model, load the weights (unless ``load_weights`` is false) and inject;
        returns the model."""
        with self.use_ejected():
            for name, obj in self.object_patches.items():
                old = set_attr(self.model, name, obj)
                self.object_patches_backup.setdefault(name, old)
            if load_weights:
                self.load(device_to, lowvram_model_memory=lowvram_model_memory,
                          force_patch_weights=force_patch_weights, full_load=lowvram_model_memory == 0)
        self.inject_model()
        return self.model

    def unpatch_model(self, device_to: Any = None, unpatch_weights: bool = True) -> None:
        """Eject, take the weight patches off (the original weights back, bit for bit) and restore the objects."""
        self.eject_model()
        if unpatch_weights:
            default_manager().unload(self.patcher)
            self.patcher.unpatch_weights()
            for module in self.model.modules():
                wipe_lowvram_weight(module)
            self.model.current_weight_patches_uuid = None
            if device_to is not None:
                self.model.to(device_to)
                self.model.device = torch.device(device_to)
            self.model.model_loaded_weight_memory = 0
        for name, old in self.object_patches_backup.items():
            set_attr(self.model, name, old)
        self.object_patches_backup.clear()

    def partially_load(self, device_to: Any, extra_memory: int = 0, force_patch_weights: bool = False) -> int:
        """Loads the whole model (Hearth does not stream parts of one); returns the bytes it added."""
        before = self.loaded_size()
        self.patch_model(device_to, load_weights=True, force_patch_weights=force_patch_weights)
        return self.loaded_size() - before

    def partially_unload(self, device_to: Any, memory_to_free: int = 0) -> int:
        """Unloads the whole model; returns the bytes freed."""
        freed = self.loaded_size()
        self.unpatch_model(device_to)
        return freed

    def detach(self, unpatch_all: bool = True) -> torch.nn.Module:
        self.eject_model()
        self.model_patches_to(self.offload_device)
        if unpatch_all:
            self.unpatch_model(self.offload_device, unpatch_weights=True)
        for callback in self.get_all_callbacks(CallbacksMP.ON_DETACH):
            callback(self, unpatch_all)
        return self.model

    # -- the run's moments ---------------------------------------------------------------------------------------

    def pre_run(self) -> None:
        if hasattr(self.model, "current_patcher"):
            self.model.current_patcher = self
        for callback in self.get_all_callbacks(CallbacksMP.ON_PRE_RUN):
            callback(self)

    def prepare_state(self, timestep: Any) -> None:
        for callback in self.get_all_callbacks(CallbacksMP.ON_PREPARE_STATE):
            callback(self, timestep)

    def cleanup(self) -> None:
        if hasattr(self.model, "current_patcher"):
            self.model.current_patcher = None
        for callback in self.get_all_callbacks(CallbacksMP.ON_CLEANUP):
            callback(self)

    # Weight hooks are not applied by Hearth: a patcher has none, and these keep ComfyUI's calls harmless.

    def set_hook_mode(self, hook_mode: Any) -> None:
        self.hook_mode = hook_mode

    def apply_hooks(self, hooks: Any, transformer_options: dict[str, Any] | None = None,
                    force_apply: bool = False) -> dict[str, Any]:
        return {}

    def unpatch_hooks(self) -> None:
        self.current_hooks = None

    def patch_hooks(self, hooks: Any) -> None:
        self.current_hooks = hooks

    def clean_hooks(self) -> None:
        self.current_hooks = None

    def restore_hook_patches(self) -> None:
        if self.hook_patches_backup:
            self.hook_patches, self.hook_patches_backup = self.hook_patches_backup, {}

    def prepare_hook_patches_current_keyframe(self, t: torch.Tensor, hook_group: Any,
                                              model_options: dict[str, Any] | None = None) -> None:
        return None

    # -- Hearth's MODEL protocol, for a patcher around a BaseModel ------------------------------------------------

    @property
    def family(self) -> str:
        return type(self.model).__name__

    @property
    def sampling(self) -> Any:
        """``model_sampling`` as this clone sees it (an object patch first)."""
        return self.get_model_object("model_sampling")

    @property
    def latent_channels(self) -> int:
        return self.model.latent_format.latent_channels

    def process_latent_in(self, raw: torch.Tensor) -> torch.Tensor:
        return self.model.process_latent_in(raw)

    def process_latent_out(self, scaled: torch.Tensor) -> torch.Tensor:
        return self.model.process_latent_out(scaled)

    def prepare(self, batch_shape: tuple[int, ...]) -> torch.device:
        """Load for a batch of ``batch_shape`` and run the ``ON_PRE_RUN`` callbacks (sampling is starting)."""
        self.ensure_loaded(self.memory_required(tuple(batch_shape)) if hasattr(self.model, "memory_required")
                           else None, input_shape=tuple(batch_shape))
        self.pre_run()
        return self.load_device

    @contextlib.contextmanager
    def _objects_in_place(self) -> Iterator[None]:
        # The network is shared by every clone: this clone's object patches and injections go on for the
        # evaluation only (what patch_model already put on stays).
        replaced = []
        injected_here = not self.is_injected
        try:
            for name, obj in self.object_patches.items():
                if name not in self.object_patches_backup:
                    replaced.append((name, set_attr(self.model, name, obj)))
            if injected_here:
                self.inject_model()
            yield
        finally:
            if injected_here:
                self.eject_model()
            for name, old in reversed(replaced):
                set_attr(self.model, name, old)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                options: dict[str, Any] | None = None) -> torch.Tensor:
        """One evaluation of the network (Hearth's MODEL protocol) the way ComfyUI's sampler makes it."""
        options = dict(options or {})
        if not self.is_ready():
            self.prepare(tuple(x.shape))
        if cond.shape[0] != x.shape[0]:
            cond = cond.repeat(-(-x.shape[0] // cond.shape[0]), 1, 1)[: x.shape[0]]
        sigma = sigma.reshape(-1).expand(x.shape[0]).to(x.device, torch.float32)
        chunks = _cond_or_uncond(options.pop("cond_index", None), x.shape[0])
        transformer_options = copy_nested_dicts(self.model_options.get("transformer_options", {}))
        # ComfyUI hands the patcher's wrappers and callbacks to the evaluation through transformer_options.
        transformer_options["wrappers"] = merge_nested_dicts(transformer_options.get("wrappers", {}), self.wrappers)
        transformer_options["callbacks"] = merge_nested_dicts(transformer_options.get("callbacks", {}),
                                                              self.callbacks)
        transformer_options.update(cond_or_uncond=chunks, sigmas=sigma)
        conds: dict[str, Any] = {"c_crossattn": cond}
        if getattr(self.model, "concat_keys", ()):
            # An inpainting network's extra channels: a pack's BaseModel builds them, or it names what is lacking.
            concat = self.model.concat_cond(**{**options, "noise": x, "device": x.device})
            if concat is not None:
                conds["c_concat"] = concat.to(x.device)
        adm = self.model.encode_adm(**options) if hasattr(self.model, "encode_adm") else None
        if adm is not None:
            conds["y"] = adm.to(x.device)
        wrapper = self.model_options.get("model_function_wrapper")
        with torch.no_grad(), self._objects_in_place():
            if wrapper is None:
                return self.model.apply_model(x, sigma, transformer_options=transformer_options, **conds)
            return wrapper(self.model.apply_model, {"input": x, "timestep": sigma, "cond_or_uncond": chunks,
                                                    "c": {**conds, "transformer_options": transformer_options}})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {type(self.model).__name__}, {len(self.patches)} patched keys>"
