"""What custom nodes hang on a MODEL besides weights and options: wrappers and callbacks by kind and key,
attachments, additional models and injections, with ComfyUI's ModelPatcher method names.

:class:`PatcherRegistrations` is a mixin: ``comfy.model_patcher.ModelPatcher`` takes it, and any MODEL value could
(it needs only the dicts :meth:`PatcherRegistrations.init_registrations` makes). Each registry is
``{kind: {key: [fn, ...]}}`` (wrappers, callbacks) or ``{key: value}``; a clone gets copies
(:meth:`PatcherRegistrations.copy_registrations_to`), an attachment with ``on_model_patcher_clone`` its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

ON_CLONE = "on_clone"  # ComfyUI's CallbacksMP.ON_CLONE: fn(original, clone) after a clone
APPLY_MODEL = "apply_model"  # ComfyUI's WrappersMP.APPLY_MODEL: around one evaluation (noisy latent, sigma)
DIFFUSION_MODEL = "diffusion_model"  # ComfyUI's WrappersMP.DIFFUSION_MODEL: around the network's forward


class WrapperExecutor:
    """ComfyUI's ``comfy.patcher_extension.WrapperExecutor``: runs ``original`` inside ``wrappers``, the first
    outermost. Each wrapper is called ``wrapper(executor, *args, **kwargs)``; calling ``executor(*args, **kwargs)``
    runs the next wrapper, or ``original`` after the last. ``class_obj`` is the object ``original`` belongs to
    (``executor.class_obj``: the model view for APPLY_MODEL, the network for DIFFUSION_MODEL)."""

    def __init__(self, original: Callable[..., Any], class_obj: Any, wrappers: list[Callable[..., Any]],
                 idx: int = 0) -> None:
        self.original = original
        self.class_obj = class_obj
        self.wrappers = list(wrappers)
        self.idx = idx
        self.is_last = idx == len(self.wrappers)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_last:
            raise RuntimeError(f"a wrapper of {getattr(self.original, '__qualname__', self.original)!r} called its "
                               f"executor after the wrapped function had already run")
        return type(self)(self.original, self.class_obj, self.wrappers, self.idx + 1).execute(*args, **kwargs)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_last:
            return self.original(*args, **kwargs)
        return self.wrappers[self.idx](self, *args, **kwargs)


def wrappers_of(kind: str, *tables: Any) -> list[Callable[..., Any]]:
    """The wrappers of ``kind`` in registries ``{kind: {key: [fn, ...]}}`` (a MODEL's ``wrappers``, its
    ``transformer_options["wrappers"]``), in order, each function once; None and empty tables are skipped."""
    found: list[Callable[..., Any]] = []
    for table in tables:
        for fns in ((table or {}).get(kind) or {}).values():
            found.extend(fn for fn in fns if not any(fn is seen for seen in found))
    return found


def run_wrapped(original: Callable[..., Any], class_obj: Any, wrappers: list[Callable[..., Any]], *args: Any,
                **kwargs: Any) -> Any:
    """``original(*args, **kwargs)`` inside ``wrappers`` (see :class:`WrapperExecutor`); directly without any."""
    if not wrappers:
        return original(*args, **kwargs)
    return WrapperExecutor(original, class_obj, wrappers).execute(*args, **kwargs)


class PatcherRegistrations:
    """ComfyUI's registry methods of ``ModelPatcher`` (see the module docstring)."""

    attachments: dict[str, Any]
    additional_models: dict[str, list[Any]]
    callbacks: dict[str, dict[Any, list[Callable[..., Any]]]]
    wrappers: dict[str, dict[Any, list[Callable[..., Any]]]]
    injections: dict[str, list[Any]]
    is_injected: bool
    skip_injection: bool

    def init_registrations(self) -> None:
        """Empty registries, not injected."""
        self.attachments = {}
        self.additional_models = {}
        self.callbacks = {}
        self.wrappers = {}
        self.injections = {}
        self.is_injected = False
        self.skip_injection = False

    def copy_registrations_to(self, twin: Any) -> None:
        """Give a clone its own copies of every registry (the additional models cloned too)."""
        twin.attachments = {key: value.on_model_patcher_clone() if hasattr(value, "on_model_patcher_clone")
                            else value for key, value in self.attachments.items()}
        twin.additional_models = {key: [m.clone() for m in models] for key, models in self.additional_models.items()}
        twin.callbacks = {kind: {key: list(fns) for key, fns in by_key.items()}
                          for kind, by_key in self.callbacks.items()}
        twin.wrappers = {kind: {key: list(fns) for key, fns in by_key.items()}
                         for kind, by_key in self.wrappers.items()}
        twin.injections = {key: list(injections) for key, injections in self.injections.items()}
        twin.is_injected, twin.skip_injection = self.is_injected, self.skip_injection

    # -- callbacks and wrappers ----------------------------------------------------------------------------------

    def add_callback(self, call_type: str, callback: Callable[..., Any]) -> None:
        self.add_callback_with_key(call_type, None, callback)

    def add_callback_with_key(self, call_type: str, key: Any, callback: Callable[..., Any]) -> None:
        self.callbacks.setdefault(call_type, {}).setdefault(key, []).append(callback)

    def remove_callbacks_with_key(self, call_type: str, key: Any) -> None:
        self.callbacks.get(call_type, {}).pop(key, None)

    def get_callbacks(self, call_type: str, key: Any) -> list[Callable[..., Any]]:
        return self.callbacks.get(call_type, {}).get(key, [])

    def get_all_callbacks(self, call_type: str) -> list[Callable[..., Any]]:
        return [fn for fns in self.callbacks.get(call_type, {}).values() for fn in fns]

    def add_wrapper(self, wrapper_type: str, wrapper: Callable[..., Any]) -> None:
        self.add_wrapper_with_key(wrapper_type, None, wrapper)

    def add_wrapper_with_key(self, wrapper_type: str, key: Any, wrapper: Callable[..., Any]) -> None:
        self.wrappers.setdefault(wrapper_type, {}).setdefault(key, []).append(wrapper)

    def remove_wrappers_with_key(self, wrapper_type: str, key: Any) -> None:
        self.wrappers.get(wrapper_type, {}).pop(key, None)

    def get_wrappers(self, wrapper_type: str, key: Any) -> list[Callable[..., Any]]:
        return self.wrappers.get(wrapper_type, {}).get(key, [])

    def get_all_wrappers(self, wrapper_type: str) -> list[Callable[..., Any]]:
        return [fn for fns in self.wrappers.get(wrapper_type, {}).values() for fn in fns]

    # -- attachments, additional models, injections --------------------------------------------------------------

    def set_attachments(self, key: str, attachment: Any) -> None:
        self.attachments[key] = attachment

    def remove_attachments(self, key: str) -> None:
        self.attachments.pop(key, None)

    def get_attachment(self, key: str) -> Any:
        return self.attachments.get(key)

    def set_additional_models(self, key: str, models: list[Any]) -> None:
        self.additional_models[key] = models

    def remove_additional_models(self, key: str) -> None:
        self.additional_models.pop(key, None)

    def get_additional_models_with_key(self, key: str) -> list[Any]:
        return self.additional_models.get(key, [])

    def get_additional_models(self) -> list[Any]:
        return [m for models in self.additional_models.values() for m in models]

    def get_nested_additional_models(self) -> list[Any]:
        """Every additional model, and theirs, each once (circular references stop)."""
        found: list[Any] = []
        seen: set[int] = set()
        pending = self.get_additional_models()
        while pending:
            model = pending.pop(0)
            if id(model) in seen:
                continue
            seen.add(id(model))
            found.append(model)
            pending.extend(getattr(model, "get_additional_models", list)())
        return found

    def set_injections(self, key: str, injections: list[Any]) -> None:
        self.injections[key] = injections

    def remove_injections(self, key: str) -> None:
        self.injections.pop(key, None)

    def inject_model(self) -> None:
        if self.is_injected or self.skip_injection:
            return
        for injections in self.injections.values():
            for injection in injections:
                injection.inject(self)
                self.is_injected = True
        if self.is_injected:
            for callback in self.get_all_callbacks("on_inject_model"):
                callback(self)

    def eject_model(self) -> None:
        if not self.is_injected:
            return
        for injections in self.injections.values():
            for injection in injections:
                injection.eject(self)
        self.is_injected = False
        for callback in self.get_all_callbacks("on_eject_model"):
            callback(self)

    @contextlib.contextmanager
    def use_ejected(self, skip_and_inject_on_exit_only: bool = False) -> Iterator[None]:
        """The model without the injections while the block runs, injected again after (if it was)."""
        was_injected = self.is_injected
        skipped = self.skip_injection
        if skip_and_inject_on_exit_only:
            self.skip_injection = True
        self.eject_model()
        try:
            yield
        finally:
            self.skip_injection = skipped
            if was_injected or skip_and_inject_on_exit_only:
                self.inject_model()
