"""``comfy.patcher_extension``: the wrappers and callbacks packs hang on a model, and the executor that runs them.

Packs register functions by kind (``WrappersMP.APPLY_MODEL``, ``CallbacksMP.ON_PRE_RUN``...) and by a key of
their own, either on a ``ModelPatcher`` (its ``wrappers`` / ``callbacks`` dicts) or in a ``transformer_options``
dict (under ``"wrappers"`` / ``"callbacks"``); both hold ``{kind: {key: [fn, ...]}}`` as ComfyUI's do.

A wrapper is ``fn(executor, *args, **kwargs)``: it calls ``executor(*args, **kwargs)`` to run the next wrapper, the
last one running the wrapped function; ``executor.class_obj`` is the object whose method is wrapped.

Where Hearth runs them: ``comfy.model_base.BaseModel.apply_model`` runs the ``APPLY_MODEL`` wrappers and the
``DIFFUSION_MODEL`` ones around its diffusion model; a ``comfy.model_patcher.ModelPatcher`` runs ``ON_CLONE``,
``ON_LOAD``, ``ON_PRE_RUN``, ``ON_CLEANUP``, ``ON_DETACH`` and the injection callbacks at ComfyUI's moments. The
sampling-level kinds (``OUTER_SAMPLE``, ``SAMPLER_SAMPLE``, ``PREPARE_SAMPLING``, ``CALC_COND_BATCH``,
``PREDICT_NOISE``) run where the sampling code that owns that moment calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class CallbacksMP:
    """The moments a callback can be registered for (ComfyUI's names and values)."""

    ON_CLONE = "on_clone"
    ON_LOAD = "on_load_after"
    ON_DETACH = "on_detach_after"
    ON_CLEANUP = "on_cleanup"
    ON_PRE_RUN = "on_pre_run"
    ON_PREPARE_STATE = "on_prepare_state"
    ON_APPLY_HOOKS = "on_apply_hooks"
    ON_REGISTER_ALL_HOOK_PATCHES = "on_register_all_hook_patches"
    ON_INJECT_MODEL = "on_inject_model"
    ON_EJECT_MODEL = "on_eject_model"

    @classmethod
    def init_callbacks(cls) -> dict[str, dict[str, list[Callable[..., Any]]]]:
        return {}


class WrappersMP:
    """The functions a wrapper can be put around (ComfyUI's names and values)."""

    OUTER_SAMPLE = "outer_sample"
    PREPARE_SAMPLING = "prepare_sampling"
    SAMPLER_SAMPLE = "sampler_sample"
    PREDICT_NOISE = "predict_noise"
    CALC_COND_BATCH = "calc_cond_batch"
    APPLY_MODEL = "apply_model"
    DIFFUSION_MODEL = "diffusion_model"

    @classmethod
    def init_wrappers(cls) -> dict[str, dict[str, list[Callable[..., Any]]]]:
        return {}


def _holder(options: dict[str, Any], is_model_options: bool, create: bool) -> dict[str, Any]:
    # model_options hold the registrations in their transformer_options; transformer_options hold them directly.
    if not is_model_options:
        return options
    return options.setdefault("transformer_options", {}) if create else options.get("transformer_options", {})


def _add(section: str, kind: str, key: Any, fn: Callable[..., Any], options: dict[str, Any],
         is_model_options: bool) -> None:
    table = _holder(options, is_model_options, True).setdefault(section, {})
    table.setdefault(kind, {}).setdefault(key, []).append(fn)


def _with_key(section: str, kind: str, key: Any, options: dict[str, Any], is_model_options: bool) -> list[Any]:
    return list(_holder(options, is_model_options, False).get(section, {}).get(kind, {}).get(key, []))


def _all(section: str, kind: str, options: dict[str, Any], is_model_options: bool) -> list[Any]:
    found: list[Any] = []
    for functions in _holder(options, is_model_options, False).get(section, {}).get(kind, {}).values():
        found.extend(functions)
    return found


def add_callback(call_type: str, callback: Callable[..., Any], transformer_options: dict[str, Any],
                 is_model_options: bool = False) -> None:
    add_callback_with_key(call_type, None, callback, transformer_options, is_model_options)


def add_callback_with_key(call_type: str, key: Any, callback: Callable[..., Any], transformer_options: dict[str, Any],
                          is_model_options: bool = False) -> None:
    _add("callbacks", call_type, key, callback, transformer_options, is_model_options)


def get_callbacks_with_key(call_type: str, key: Any, transformer_options: dict[str, Any],
                           is_model_options: bool = False) -> list[Callable[..., Any]]:
    return _with_key("callbacks", call_type, key, transformer_options, is_model_options)


def get_all_callbacks(call_type: str, transformer_options: dict[str, Any],
                      is_model_options: bool = False) -> list[Callable[..., Any]]:
    return _all("callbacks", call_type, transformer_options, is_model_options)


def add_wrapper(wrapper_type: str, wrapper: Callable[..., Any], transformer_options: dict[str, Any],
                is_model_options: bool = False) -> None:
    add_wrapper_with_key(wrapper_type, None, wrapper, transformer_options, is_model_options)


def add_wrapper_with_key(wrapper_type: str, key: Any, wrapper: Callable[..., Any], transformer_options: dict[str, Any],
                         is_model_options: bool = False) -> None:
    _add("wrappers", wrapper_type, key, wrapper, transformer_options, is_model_options)


def get_wrappers_with_key(wrapper_type: str, key: Any, transformer_options: dict[str, Any],
                          is_model_options: bool = False) -> list[Callable[..., Any]]:
    return _with_key("wrappers", wrapper_type, key, transformer_options, is_model_options)


def get_all_wrappers(wrapper_type: str, transformer_options: dict[str, Any],
                     is_model_options: bool = False) -> list[Callable[..., Any]]:
    return _all("wrappers", wrapper_type, transformer_options, is_model_options)


class WrapperExecutor:
    """Runs ``original`` inside ``wrappers``, the first given outermost.

    Each wrapper gets the executor for the next step as its first argument; calling it runs the next wrapper (or,
    after the last, ``original``). ``class_obj`` is the object whose method ``original`` is, for wrappers that
    need it (``executor.class_obj``).
    """

    def __init__(self, original: Callable[..., Any], class_obj: Any, wrappers: list[Callable[..., Any]],
                 idx: int) -> None:
        self.original = original
        self.class_obj = class_obj
        self.wrappers = list(wrappers)
        self.idx = idx
        self.is_last = idx == len(self.wrappers)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the next wrapper, or ``original`` after the last (what a wrapper calls)."""
        return self._create_next_executor().execute(*args, **kwargs)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Start the chain at this executor's position (what the wrapped code calls, never a wrapper)."""
        if self.is_last:
            return self.original(*args, **kwargs)
        return self.wrappers[self.idx](self, *args, **kwargs)

    def _create_next_executor(self) -> WrapperExecutor:
        following = self.idx + 1
        if following > len(self.wrappers):
            raise RuntimeError(f"a wrapper of {getattr(self.original, '__qualname__', self.original)!r} called its "
                               f"executor after the wrapped function had already run")
        return type(self)(self.original, self.class_obj, self.wrappers, following)

    @classmethod
    def new_executor(cls, original: Callable[..., Any], wrappers: list[Callable[..., Any]],
                     idx: int = 0) -> WrapperExecutor:
        return cls(original, class_obj=None, wrappers=wrappers, idx=idx)

    @classmethod
    def new_class_executor(cls, original: Callable[..., Any], class_obj: Any, wrappers: list[Callable[..., Any]],
                           idx: int = 0) -> WrapperExecutor:
        return cls(original, class_obj, wrappers, idx=idx)


class PatcherInjection:
    """A pair of functions a ``ModelPatcher`` calls with itself when it injects (``inject``) and ejects
    (``eject``) the pack's changes to the model (``set_injections``)."""

    def __init__(self, inject: Callable[[Any], Any], eject: Callable[[Any], Any]) -> None:
        self.inject = inject
        self.eject = eject


def copy_nested_dicts(input_dict: dict[Any, Any]) -> dict[Any, Any]:
    """A copy of ``input_dict`` with its nested dicts copied and its lists copied one level (values shared)."""
    copied = dict(input_dict)
    for key, value in input_dict.items():
        if isinstance(value, dict):
            copied[key] = copy_nested_dicts(value)
        elif isinstance(value, list):
            copied[key] = list(value)
    return copied


def merge_nested_dicts(dict1: dict[Any, Any], dict2: dict[Any, Any], copy_dict1: bool = True) -> dict[Any, Any]:
    """``dict1`` with ``dict2`` merged in: nested dicts merged, lists extended, other values replaced."""
    merged = copy_nested_dicts(dict1) if copy_dict1 else dict1
    for key, value in dict2.items():
        if isinstance(value, dict):
            merged[key] = merge_nested_dicts(value, merged.setdefault(key, {}))
        elif isinstance(value, list):
            merged.setdefault(key, []).extend(value)
        else:
            merged[key] = value
    return merged
