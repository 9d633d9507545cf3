"""The ModelPatcher-style surface every MODEL, CLIP and VAE value offers, written once for every model family.

A family's value (the SD plugin's ``SDModel``, the video plugin's ``WanVideoModel``...) subclasses
:class:`ModelValue` and gets what ComfyUI's ``ModelPatcher`` gives custom nodes: ``clone()`` (shares weights,
copies patches and options), weight patches (``add_patches`` / ``get_key_patches``), ``model_options`` with the
``set_model_*`` setters, object patches, load and offload devices, and readiness through the model manager.
What a family must say about itself is small: which ``PatchedModel``s it owns (given to the constructor),
under which key prefix its weights go in ComfyUI's naming, and which object patches it takes.

``model_options`` follows ComfyUI's layout::

    {"transformer_options": {"patches": {"attn1_patch": [fn, ...], ...},
                             "patches_replace": {"attn2": {("input", 4, 0): fn, ...}}},
     "model_function_wrapper": fn, "sampler_cfg_function": fn, ...}

The setters only record functions there; a family's forward decides which of them it honours. The sampler's keys
(:data:`SAMPLER_OPTIONS`) are applied by the samplers plugin around the model calls, for every family.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch

from hearth.core.models import lora_math
from hearth.core.models.patches import PatchedModel
from hearth.core.models.registrations import ON_CLONE, PatcherRegistrations

# model_options keys the samplers apply around the model calls: they do not change one model evaluation.
SAMPLER_OPTIONS = ("sampler_cfg_function", "sampler_post_cfg_function", "sampler_pre_cfg_function",
                   "denoise_mask_function", "disable_cfg1_optimization")


def copy_options(value: Any) -> Any:
    """A copy of ``model_options`` deep in its dicts and lists, sharing the functions and tensors they hold:
    a clone's ``set_model_*`` calls must not reach the model it was cloned from (ComfyUI copies the same way)."""
    if isinstance(value, dict):
        return {key: copy_options(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_options(item) for item in value]
    return value


def is_plain(options: Mapping[str, Any]) -> bool:
    """True when ``options`` asks nothing of a model evaluation: no key but an empty ``transformer_options`` and
    the sampler's own keys."""
    return all((key == "transformer_options" and not value) or key in SAMPLER_OPTIONS for key, value in options.items())


def add_patch(options: dict[str, Any], patch: Callable[..., Any], name: str) -> None:
    """Append ``patch`` to ``transformer_options["patches"][name]``."""
    patches = options.setdefault("transformer_options", {}).setdefault("patches", {})
    patches.setdefault(name, []).append(patch)


def set_patch_replace(options: dict[str, Any], patch: Callable[..., Any], name: str, block_name: str, number: int,
                      transformer_index: int | None = None) -> None:
    """Set ``transformer_options["patches_replace"][name][(block_name, number[, transformer_index])]``."""
    replace = options.setdefault("transformer_options", {}).setdefault("patches_replace", {})
    key = (block_name, number) if transformer_index is None else (block_name, number, transformer_index)
    replace.setdefault(name, {})[key] = patch


def weight_patch(key: Any, value: Any) -> torch.Tensor | Callable[[torch.Tensor, float], torch.Tensor]:
    """A ComfyUI weight patch value as a ``PatchedModel`` patch (a delta tensor or ``fn(weight, strength)``).

    Accepted: a tensor delta, ``(delta,)``, a ``[weight]`` list from ``get_key_patches`` (a model merge), or
    ``(kind, args)`` of any kind ComfyUI's ``comfy.lora.load_lora`` writes: ``diff``, ``set``, ``lora`` (with
    LoCon mid, DoRA scale, reshape), ``loha``, ``lokr``, ``glora``. Kinds other than a plain diff become a
    function computed by :mod:`hearth.core.models.lora_math` when the model loads (DoRA needs the whole weight).
    A malformed patch is refused here, naming its kind. What differs from ComfyUI: a patch that would change the
    weight's shape (``reshape``, ``pad_weight``) fails when the model loads, since Hearth's layers keep their shape.
    """
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], torch.Tensor):
        return value[0]  # get_key_patches of another model: a merge
    if isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], torch.Tensor):
        return value[0]
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        kind, args = value
        try:
            lora_math.check_patch(kind, args)
        except ValueError as exc:
            raise ValueError(f"weight patch for {key!r}: {exc}") from None
        if kind == "diff" and (len(args) == 1 or not isinstance(args[1], Mapping) or not args[1].get("pad_weight")):
            return args[0]

        def patch(weight: torch.Tensor, strength: float) -> torch.Tensor:
            return lora_math.apply_patch(kind, args, weight, strength)

        return patch
    kind = value[0] if isinstance(value, tuple) and value and isinstance(value[0], str) else type(value).__name__
    raise ValueError(f"weight patch for {key!r}: Hearth applies tensor deltas and (kind, args) patches of the "
                     f"kinds {', '.join(lora_math.KINDS)}, not {kind!r}")


def _manager() -> Any:
    from hearth.core.models.manager import default_manager

    return default_manager()


class ModelValue(PatcherRegistrations):
    """A MODEL, CLIP or VAE value: one or more ``PatchedModel``s of a loaded file, with ComfyUI's patcher surface.

    :param patcher: the ``PatchedModel`` owning the value's weights (a CLIP with several encoders passes them as
        ``patchers`` instead, by encoder name).
    :param source: the load cache's record of the file (:class:`hearth.core.models.file_cache.Loaded`): holding
        it keeps the file's weights shared while this value lives.
    :param model_options: ComfyUI's ``model_options`` (default: an empty ``transformer_options``, which custom
        nodes read without checking it exists).
    :param object_patches: objects that replace ``model.<name>`` for this clone (``model_sampling``...).

    Subclasses keep their own attributes (the network, its config); :meth:`clone` copies those by reference and
    gives the clone its own patchers, options and object patches. Subclasses say:

    * :attr:`WEIGHT_PREFIX`: the prefix of the weights' keys in ComfyUI's naming (``"diffusion_model."``);
    * :meth:`accepts_object_patch`: which ``add_object_patch`` names they honour (default ``model_sampling``);
    * :meth:`key_prefix`: per-patcher prefixes, when they own several (a CLIP's encoders).
    """

    WEIGHT_PREFIX = ""

    def __init__(self, patcher: PatchedModel | None = None, source: Any = None, *,
                 patchers: Mapping[str, PatchedModel] | None = None,
                 model_options: dict[str, Any] | None = None,
                 object_patches: dict[str, Any] | None = None) -> None:
        if (patcher is None) == (patchers is None):
            raise TypeError(f"{type(self).__name__}: give one patcher or a mapping of patchers, not both or neither")
        # By part name: a CLIP's encoders ("l", "g"); a single model's is "".
        self._patchers: dict[str, PatchedModel] = dict(patchers) if patchers is not None else {"": patcher}
        self.source = source
        self.model_options: dict[str, Any] = model_options if model_options is not None else {"transformer_options": {}}
        self.object_patches: dict[str, Any] = object_patches if object_patches is not None else {}
        self.init_registrations()

    # -- what it owns ----------------------------------------------------------------------------------------

    @property
    def patcher(self) -> PatchedModel:
        """The first (usually the only) ``PatchedModel``: ComfyUI's ``clip.patcher`` / ``vae.patcher``."""
        return next(iter(self._patchers.values()))

    def owned_patchers(self) -> list[PatchedModel]:
        """Every ``PatchedModel`` this value owns, in part order."""
        return list(self._patchers.values())

    def patchers_by_name(self) -> dict[str, PatchedModel]:
        """The owned ``PatchedModel``s by part name (a CLIP's encoders; ``""`` for a single model)."""
        return dict(self._patchers)

    @property
    def load_device(self) -> torch.device:
        return self.patcher.load_device

    @property
    def offload_device(self) -> torch.device:
        return self.patcher.offload_device

    @property
    def patches(self) -> dict[str, list[Any]]:
        """The first patcher's patch lists by key (ComfyUI's ``model_patcher.patches``)."""
        return self.patcher.patches

    def memory_bytes(self) -> int:
        """Bytes the value's weights hold, for the executor's ``ram`` cache."""
        return sum(p.memory_bytes() for p in self.owned_patchers())

    def model_size(self) -> int:
        return sum(p.nbytes for p in self.owned_patchers())

    def is_clone(self, other: Any) -> bool:
        """True when ``other`` is a value over the same weights (a clone of this one or of its source)."""
        theirs = getattr(other, "patcher", None)
        return isinstance(theirs, PatchedModel) and self.patcher.shares_weights(theirs)

    # -- cloning ---------------------------------------------------------------------------------------------

    def clone(self) -> ModelValue:
        """A new value on the same weights: own patch lists, own options and object patches; no tensor copied."""
        twin = copy.copy(self)  # the subclass's own attributes (network, config) are shared, as ComfyUI shares them
        twin._patchers = {name: p.clone() for name, p in self._patchers.items()}
        twin.model_options = copy_options(self.model_options)
        twin.object_patches = dict(self.object_patches)
        self.copy_registrations_to(twin)
        for callback in self.get_all_callbacks(ON_CLONE):
            callback(self, twin)
        return twin

    # -- readiness (through the model manager's public methods) ---------------------------------------------

    def is_ready(self) -> bool:
        """Whether every owned model is on its device with this clone's patches on."""
        return _manager().is_ready(self.owned_patchers())

    def ensure_loaded(self, memory_required: int | None = None, *, input_shape: tuple[int, ...] | None = None,
                      dtype: torch.dtype | None = None) -> torch.device:
        """Make the owned models resident (patches applied) unless they are ready; returns the compute device."""
        _manager().ensure_loaded(self.owned_patchers(), memory_required=memory_required, input_shape=input_shape,
                                 dtype=dtype)
        return self.load_device

    def load_model(self) -> PatchedModel:
        """Make the value resident now (ComfyUI's ``clip.load_model()``); returns its first ``PatchedModel``."""
        self.ensure_loaded()
        return self.patcher

    def current_loaded_device(self) -> torch.device:
        """Where the weights are now: the compute device while resident, else the offload device."""
        return self.load_device if _manager().is_loaded(self.patcher) else self.offload_device

    # -- weight patches, in ComfyUI's key names --------------------------------------------------------------

    def key_prefix(self, name: str) -> str:
        """The ComfyUI key prefix of the weights of patcher ``name`` (default: :attr:`WEIGHT_PREFIX`)."""
        return self.WEIGHT_PREFIX

    def model_state_dict(self, filter_prefix: str | None = None) -> dict[str, torch.Tensor]:
        """The base weights (no clone's patches) under ComfyUI's key names."""
        found = {}
        for name, patcher in self._patchers.items():
            # The shared module may carry the patches of whichever clone ran last; its originals are in the backup.
            originals = patcher.weights.backup
            prefix = self.key_prefix(name)
            for key, weight in patcher.module.state_dict().items():
                found[prefix + key] = originals.get(key, weight)
        return {k: v for k, v in found.items() if filter_prefix is None or k.startswith(filter_prefix)}

    def get_key_patches(self, filter_prefix: str | None = None) -> dict[str, list[torch.Tensor]]:
        """Each weight as ComfyUI's model-merge nodes read it: ``{key: [weight with this clone's patches]}``."""
        found = {}
        for name, patcher in self._patchers.items():
            prefix = self.key_prefix(name)
            originals = patcher.weights.backup
            for key, weight in patcher.module.state_dict().items():
                full = prefix + key
                if filter_prefix is not None and not full.startswith(filter_prefix):
                    continue
                weight = originals.get(key, weight).detach()
                if key in patcher.patches:
                    weight = patcher.patched_weight(key, weight, torch.device("cpu"))
                found[full] = [weight]
        return found

    def add_patches(self, patches: Mapping[Any, Any], strength_patch: float = 1.0,
                    strength_model: float = 1.0) -> list[Any]:
        """ComfyUI's weight patches: ``weight * strength_model + strength_patch * patch``; returns the keys that
        exist in this value (others are skipped, as ComfyUI skips them).

        Keys are ComfyUI's (:meth:`key_prefix` + the module's key; with a single patcher the bare key also works).
        Values take the forms :func:`weight_patch` lists.
        """
        applied: list[Any] = []
        for key in patches:
            if isinstance(key, tuple):
                raise ValueError(f"weight patch {key!r}: patches on part of a weight (offset keys) are not "
                                 f"supported by Hearth; patch the whole weight")
        for name, patcher in self._patchers.items():
            prefix = self.key_prefix(name)
            # A single model under the class's prefix also takes its bare keys (a UNet key without diffusion_model.).
            bare = len(self._patchers) == 1 and prefix == self.WEIGHT_PREFIX
            known = patcher.module.state_dict(keep_vars=True).keys()
            mine: dict[str, Any] = {}
            for key in patches:
                if key.startswith(prefix) and key[len(prefix):] in known:
                    mine[key[len(prefix):]] = key
                elif bare and key in known:
                    mine.setdefault(key, key)
            # Only the keys this value has are converted: ComfyUI skips the others without looking at them.
            done = patcher.add_patches({inner: weight_patch(key, patches[key]) for inner, key in mine.items()},
                                       strength_patch, strength_model=strength_model)
            applied += [mine[inner] for inner in done]
        return applied

    # -- object patches --------------------------------------------------------------------------------------

    def accepts_object_patch(self, name: str) -> bool:
        """Whether this family honours an object patch on ``model.<name>`` (default: ``model_sampling`` only)."""
        return name == "model_sampling"

    def add_object_patch(self, name: str, obj: Any) -> None:
        """Replace ``model.<name>`` for this clone (``model_sampling``, or what the family accepts)."""
        if not self.accepts_object_patch(name):
            raise ValueError(f"object patch {name!r}: Hearth's {type(self).__name__} does not take it; it takes "
                             f"'model_sampling'" + self._object_patch_hint())
        self.object_patches[name] = obj

    def _object_patch_hint(self) -> str:
        return ""

    def get_model_object(self, name: str) -> Any:
        """``model.<name>`` as this clone sees it (object patches first), e.g. ``"model_sampling"``."""
        if name in self.object_patches:
            return self.object_patches[name]
        target: Any = getattr(self, "model", None)
        if target is None:
            raise AttributeError(f"{type(self).__name__} has no object {name!r}")
        for part in name.split("."):
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        return target

    # -- model_options setters (ComfyUI's ModelPatcher names) ------------------------------------------------

    def set_model_unet_function_wrapper(self, wrapper: Callable[..., torch.Tensor]) -> None:
        self.model_options["model_function_wrapper"] = wrapper

    def set_model_patch(self, patch: Callable[..., Any], name: str) -> None:
        add_patch(self.model_options, patch, name)

    def set_model_patch_replace(self, patch: Callable[..., Any], name: str, block_name: str, number: int,
                                transformer_index: int | None = None) -> None:
        set_patch_replace(self.model_options, patch, name, block_name, number, transformer_index)

    def set_model_attn1_patch(self, patch: Callable[..., Any]) -> None:
        self.set_model_patch(patch, "attn1_patch")

    def set_model_attn2_patch(self, patch: Callable[..., Any]) -> None:
        self.set_model_patch(patch, "attn2_patch")

    def set_model_attn1_output_patch(self, patch: Callable[..., Any]) -> None:
        self.set_model_patch(patch, "attn1_output_patch")

    def set_model_attn2_output_patch(self, patch: Callable[..., Any]) -> None:
        self.set_model_patch(patch, "attn2_output_patch")

    def set_model_attn1_replace(self, patch: Callable[..., Any], block_name: str, number: int,
                                transformer_index: int | None = None) -> None:
        self.set_model_patch_replace(patch, "attn1", block_name, number, transformer_index)

    def set_model_attn2_replace(self, patch: Callable[..., Any], block_name: str, number: int,
                                transformer_index: int | None = None) -> None:
        self.set_model_patch_replace(patch, "attn2", block_name, number, transformer_index)

    def set_model_input_block_patch(self, patch: Callable[..., Any]) -> None:
        self.set_model_patch(patch, "input_block_patch")

    def set_model_input_block_patch_after_skip(self, patch: Callable[..., Any]) -> None:
        self.set_model_patch(patch, "input_block_patch_after_skip")

    def set_model_output_block_patch(self, patch: Callable[..., Any]) -> None:
        self.set_model_patch(patch, "output_block_patch")

    # The sampler's options: the samplers plugin's guidance reads them from any MODEL.

    def set_model_sampler_cfg_function(self, fn: Callable[..., Any], disable_cfg1_optimization: bool = False) -> None:
        self.model_options["sampler_cfg_function"] = fn
        if disable_cfg1_optimization:
            self.model_options["disable_cfg1_optimization"] = True

    def set_model_sampler_post_cfg_function(self, fn: Callable[..., Any],
                                            disable_cfg1_optimization: bool = False) -> None:
        self.model_options.setdefault("sampler_post_cfg_function", []).append(fn)
        if disable_cfg1_optimization:
            self.model_options["disable_cfg1_optimization"] = True

    def set_model_sampler_pre_cfg_function(self, fn: Callable[..., Any],
                                           disable_cfg1_optimization: bool = False) -> None:
        self.model_options.setdefault("sampler_pre_cfg_function", []).append(fn)
        if disable_cfg1_optimization:
            self.model_options["disable_cfg1_optimization"] = True

    def set_model_denoise_mask_function(self, fn: Callable[..., Any]) -> None:
        self.model_options["denoise_mask_function"] = fn
