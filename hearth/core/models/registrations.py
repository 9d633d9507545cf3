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
