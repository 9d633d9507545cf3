"""``comfy.hooks``: hook groups and keyframes, and the conditioning helpers packs build on them.

The conditioning helpers are real: ``set_conds_props`` / ``set_conds_props_and_combine`` /
``set_default_conds_and_combine`` set a mask, its strength and area, a timestep range (``start_percent``,
``end_percent``) or the ``default`` flag on CONDITIONING entries and combine lists, as ComfyUI does; Hearth's
samplers honour those keys. ``HookGroup``, ``HookKeyframe`` and ``HookKeyframeGroup`` hold their data as
ComfyUI's do, so packs build, clone and combine them.

What Hearth does not do is apply hooks while sampling (a LoRA whose strength follows keyframes, per-conditioning
weights): attaching a non-empty ``HookGroup`` to conditioning, or ``load_hook_lora_for_models``, raises
:class:`~hearth_comfy_compat.hook.HearthDoesNotProvide` naming it, rather than sampling as if there were no hook.
"""

from __future__ import annotations

import enum
from typing import Any

import torch

from hearth_comfy_compat.hook import HearthDoesNotProvide, lacking


class EnumHookMode(enum.Enum):
    MinVram = "minvram"
    MaxSpeed = "maxspeed"


class EnumHookType(enum.Enum):
    Weight = "weight"
    ObjectPatch = "object_patch"
    AdditionalModels = "add_models"
    TransformerOptions = "transformer_options"
    Injections = "add_injections"


class EnumWeightTarget(enum.Enum):
    Model = "model"
    Clip = "clip"


class EnumHookScope(enum.Enum):
    AllConditioning = "all_conditioning"
    HookedOnly = "hooked_only"


class _HookRef:
    """The identity two clones of one hook share."""


class HookKeyframe:
    """A strength from ``start_percent`` of the schedule on, held for at least ``guarantee_steps`` steps."""

    def __init__(self, strength: float, start_percent: float = 0.0, guarantee_steps: int = 1) -> None:
        self.strength = strength
        self.start_percent = float(start_percent)
        self.start_t = 999999999.9
        self.guarantee_steps = guarantee_steps

    def get_effective_guarantee_steps(self, max_sigma: torch.Tensor) -> int:
        """Guaranteed steps count only once the keyframe can start (at or after the first sigma)."""
        return self.guarantee_steps if self.start_t <= float(max_sigma) else 0

    def clone(self) -> HookKeyframe:
        twin = HookKeyframe(self.strength, self.start_percent, self.guarantee_steps)
        twin.start_t = self.start_t
        return twin


class HookKeyframeGroup:
    """Keyframes ordered by ``start_percent``; ``strength`` is the current keyframe's (1.0 without any)."""

    def __init__(self) -> None:
        self.keyframes: list[HookKeyframe] = []
        self._current_keyframe: HookKeyframe | None = None
        self._current_used_steps = 0
        self._current_index = 0
        self._current_strength: float | None = None
        self._curr_t = -1.0

    def reset(self) -> None:
        self._current_keyframe = None
        self._current_used_steps = 0
        self._current_index = 0
        self._current_strength = None
        self._curr_t = -1.0
        self._set_first_as_current()

    def add(self, keyframe: HookKeyframe) -> None:
        self.keyframes.append(keyframe)
        self.keyframes.sort(key=lambda k: k.start_percent)  # stable: equal starts keep their order
        self.reset()

    def _set_first_as_current(self) -> None:
        self._current_keyframe = self.keyframes[0] if self.keyframes else None

    def has_guarantee_steps(self) -> bool:
        return any(k.guarantee_steps > 0 for k in self.keyframes)

    def has_index(self, index: int) -> bool:
        return 0 <= index < len(self.keyframes)

    def is_empty(self) -> bool:
        return not self.keyframes

    def clone(self) -> HookKeyframeGroup:
        twin = HookKeyframeGroup()
        for keyframe in self.keyframes:
            twin.keyframes.append(keyframe.clone())
        twin._set_first_as_current()
        return twin

    def initialize_timesteps(self, model: Any) -> None:
        """Each keyframe's start as a sigma of ``model``'s schedule (``model.model_sampling`` or the model)."""
        sampling = getattr(model, "model_sampling", model)
        for keyframe in self.keyframes:
            keyframe.start_t = sampling.percent_to_sigma(keyframe.start_percent)

    def prepare_current_keyframe(self, curr_t: float, transformer_options: dict[str, Any]) -> bool:
        """Move on to the keyframe that applies at sigma ``curr_t`` once the current one has run its guaranteed
        steps (``transformer_options["sample_sigmas"]`` gives the schedule's start); returns whether the keyframe
        and its strength changed."""
        if self.is_empty() or curr_t == self._curr_t:
            return False
        max_sigma = torch.max(torch.as_tensor(transformer_options["sample_sigmas"]))
        previous_index, previous_strength = self._current_index, self._current_strength
        if self._current_used_steps >= self._current_keyframe.get_effective_guarantee_steps(max_sigma):
            for index in range(self._current_index + 1, len(self.keyframes)):
                keyframe = self.keyframes[index]
                if keyframe.start_t < curr_t:  # sigmas fall as sampling goes on: this one starts later
                    break
                self._current_index, self._current_keyframe = index, keyframe
                self._current_strength, self._current_used_steps = keyframe.strength, 0
                if keyframe.get_effective_guarantee_steps(max_sigma) > 0:
                    break
        self._current_used_steps += 1
        self._curr_t = curr_t
        return previous_index != self._current_index and previous_strength != self._current_strength

    @property
    def strength(self) -> float:
        return 1.0 if self._current_keyframe is None else self._current_keyframe.strength


class Hook:
    """A change to a model or its sampling, by type; clones share ``hook_ref`` (its identity)."""

    def __init__(self, hook_type: EnumHookType | None = None, hook_ref: _HookRef | None = None, hook_id: str | None = None,
                 hook_keyframe: HookKeyframeGroup | None = None,
                 hook_scope: EnumHookScope = EnumHookScope.AllConditioning) -> None:
        self.hook_type = hook_type
        self.hook_ref = hook_ref if hook_ref is not None else _HookRef()
        self.hook_id = hook_id
        self.hook_keyframe = hook_keyframe if hook_keyframe is not None else HookKeyframeGroup()
        self.hook_scope = hook_scope
        self.custom_should_register = None

    @property
    def strength(self) -> float:
        return self.hook_keyframe.strength

    def initialize_timesteps(self, model: Any) -> None:
        self.reset()
        self.hook_keyframe.initialize_timesteps(model)

    def reset(self) -> None:
        self.hook_keyframe.reset()

    def clone(self) -> Hook:
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.hook_keyframe = self.hook_keyframe
        return twin

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and other.hook_ref is self.hook_ref

    def __hash__(self) -> int:
        return hash(self.hook_ref)


class WeightHook(Hook):
    """Weight patches (a LoRA) whose strength follows the hook's keyframes."""

    def __init__(self, strength_model: float = 1.0, strength_clip: float = 1.0) -> None:
        super().__init__(hook_type=EnumHookType.Weight)
        self.weights: dict[str, Any] | None = None
        self.weights_clip: dict[str, Any] | None = None
        self.need_weight_init = True
        self._strength_model = strength_model
        self._strength_clip = strength_clip

    @property
    def strength_model(self) -> float:
        return self._strength_model * self.strength

    @property
    def strength_clip(self) -> float:
        return self._strength_clip * self.strength


class HookGroup:
    """An ordered set of hooks (conditioning carries one under ``"hooks"``)."""

    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self._hook_dict: dict[EnumHookType, list[Hook]] = {}

    def __len__(self) -> int:
        return len(self.hooks)

    def __iter__(self) -> Any:
        return iter(self.hooks)

    def add(self, hook: Hook) -> None:
        if hook not in self.hooks:
            self.hooks.append(hook)
            self._hook_dict.setdefault(hook.hook_type, []).append(hook)

    def remove(self, hook: Hook) -> None:
        if hook in self.hooks:
            self.hooks.remove(hook)
            self._hook_dict[hook.hook_type].remove(hook)

    def get_type(self, hook_type: EnumHookType) -> list[Hook]:
        return list(self._hook_dict.get(hook_type, []))

    def contains(self, hook: Hook) -> bool:
        return hook in self.hooks

    def is_empty(self) -> bool:
        return not self.hooks

    def clone(self) -> HookGroup:
        twin = HookGroup()
        for hook in self.hooks:
            twin.add(hook.clone())
        return twin

    def clone_and_combine(self, other: HookGroup | None) -> HookGroup:
        twin = self.clone()
        for hook in (other.hooks if other is not None else []):
            twin.add(hook.clone())
        return twin

    def set_keyframes_on_hooks(self, hook_kf: HookKeyframeGroup | None) -> None:
        keyframes = hook_kf if hook_kf is not None else HookKeyframeGroup()
        for hook in self.hooks:
            hook.hook_keyframe = keyframes.clone()

    def reset(self) -> None:
        for hook in self.hooks:
            hook.reset()

    @staticmethod
    def combine_all_hooks(hooks_list: list[HookGroup | None], require_count: int = 0) -> HookGroup | None:
        groups = [group for group in hooks_list if group is not None]
        if len(groups) < max(require_count, 1):
            return None
        combined = groups[0]
        for group in groups[1:]:
            combined = combined.clone_and_combine(group)
        return combined


def _not_applied(what: str) -> HearthDoesNotProvide:
    return lacking(what, "hooks are not applied while sampling (a LoRA scheduled by keyframes, per-conditioning "
                         "weights); apply the LoRA to the model")


def load_hook_lora_for_models(model: Any, clip: Any, lora: dict[str, torch.Tensor], strength_model: float,
                              strength_clip: float) -> Any:
    raise _not_applied("comfy.hooks.load_hook_lora_for_models")


# -- conditioning ------------------------------------------------------------------------------------------------

def conditioning_set_values(conditioning: list[Any], values: dict[str, Any] | None = None) -> list[Any]:
    """Each entry with ``values`` set in a copy of its options."""
    return [[entry[0], {**entry[1], **(values or {})}] for entry in conditioning]


def set_hooks_for_conditioning(cond: list[Any], hooks: HookGroup | None, append_hooks: bool = True,
                               cache: dict[Any, Any] | None = None) -> list[Any]:
    if hooks is None or (isinstance(hooks, HookGroup) and hooks.is_empty()):
        return cond
    raise _not_applied("comfy.hooks.set_hooks_for_conditioning")


def set_timesteps_for_conditioning(cond: list[Any], timestep_range: tuple[float, float] | None) -> list[Any]:
    if timestep_range is None:
        return cond
    return conditioning_set_values(cond, {"start_percent": timestep_range[0], "end_percent": timestep_range[1]})


def set_mask_for_conditioning(cond: list[Any], mask: torch.Tensor | None, set_cond_area: str,
                              strength: float) -> list[Any]:
    """The entries limited to ``mask`` at ``strength``; ``set_cond_area`` other than ``"default"`` also limits
    them to the mask's bounding box."""
    if mask is None:
        return cond
    if mask.ndim < 3:
        mask = mask.unsqueeze(0)
    return conditioning_set_values(cond, {"mask": mask, "set_area_to_bounds": set_cond_area != "default",
                                          "mask_strength": strength})


def combine_conditioning(conds: list[list[Any]]) -> list[Any]:
    return [entry for cond in conds for entry in cond]


def combine_with_new_conds(conds: list[Any], new_conds: list[Any]) -> list[Any]:
    return [combine_conditioning([c, new]) for c, new in zip(conds, new_conds, strict=False)]


def set_conds_props(conds: list[Any], strength: float, set_cond_area: str, mask: torch.Tensor | None = None,
                    hooks: HookGroup | None = None, timesteps_range: tuple[float, float] | None = None,
                    append_hooks: bool = True) -> list[Any]:
    """Each CONDITIONING of ``conds`` with the mask, strength, area and timestep range set."""
    final = []
    for c in conds:
        c = set_hooks_for_conditioning(c, hooks, append_hooks=append_hooks)
        c = set_mask_for_conditioning(c, mask, set_cond_area, strength)
        final.append(set_timesteps_for_conditioning(c, timesteps_range))
    return final


def set_conds_props_and_combine(conds: list[Any], new_conds: list[Any], strength: float = 1.0,
                                set_cond_area: str = "default", mask: torch.Tensor | None = None,
                                hooks: HookGroup | None = None, timesteps_range: tuple[float, float] | None = None,
                                append_hooks: bool = True) -> list[Any]:
    """Each CONDITIONING of ``conds`` followed by its ``new_conds`` entry with the properties set."""
    combined = []
    for c, new in zip(conds, new_conds, strict=False):
        new = set_hooks_for_conditioning(new, hooks, append_hooks=append_hooks)
        new = set_mask_for_conditioning(new, mask, set_cond_area, strength)
        new = set_timesteps_for_conditioning(new, timesteps_range)
        combined.append(combine_conditioning([c, new]))
    return combined


def set_default_conds_and_combine(conds: list[Any], new_conds: list[Any], hooks: HookGroup | None = None,
                                  timesteps_range: tuple[float, float] | None = None,
                                  append_hooks: bool = True) -> list[Any]:
    """Each CONDITIONING of ``conds`` followed by its ``new_conds`` entry marked ``default``."""
    combined = []
    for c, new in zip(conds, new_conds, strict=False):
        new = set_hooks_for_conditioning(new, hooks, append_hooks=append_hooks)
        new = conditioning_set_values(new, {"default": True})
        new = set_timesteps_for_conditioning(new, timesteps_range)
        combined.append(combine_conditioning([c, new]))
    return combined
