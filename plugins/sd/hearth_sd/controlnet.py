"""CONTROL_NET values: a loaded ControlNet or T2I-Adapter with its hint, strength and schedule, as ComfyUI's
``comfy/controlnet.py`` (ControlBase, ControlNet, T2IAdapter) applies them.

ControlNetApply / ControlNetApplyAdvanced put a copy of the loaded value, holding the hint image, into the
CONDITIONING options as ``"control"``. Each model evaluation, :meth:`ControlBase.get_control` (the contract
with :class:`hearth_sd.sd_model.SDModel`) returns ComfyUI's control dict, or None where the control is off:

* a chain (``previous_controlnet``) evaluates the earlier ControlNets first and sums their residuals with this
  one's, entry by entry;
* ``start_percent`` / ``end_percent`` become sigmas through the MODEL's own ``percent_to_sigma``; the control is
  off while sigma is above the first or below the second (and hands on the earlier ControlNets' residuals);
* the hint ``[B, C, H, W]`` is resized to the latent's size times 8 (centre crop to the aspect ratio, then
  ``nearest-exact``); a batch of hints is broadcast over the latent batch per batched conditioning (ComfyUI's
  ``broadcast_image_to``); a T2I-Adapter's hint is first rounded up to a multiple of its unshuffle factor;
* every residual is multiplied by ``strength`` (a ``_shuffle`` ControlNet first averages it over the image).

The network weights live in a :class:`hearth.core.models.PatchedModel`, loaded by ``default_manager()`` beside the
UNet for each evaluation, so the memory budget and the LRU see them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from hearth.core.images import center_crop_box
from hearth.core.models import PatchedModel, default_manager

from .ops import compute_dtype_of
from .sampling import ModelSampling

_DEFAULT_SAMPLING = ModelSampling()  # SD's schedule, for a caller that does not say which MODEL evaluates
XL_FAMILIES = ("sdxl", "sdxl_refiner")


def resize_hint(hint: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """ComfyUI's ``common_upscale(hint, width, height, "nearest-exact", "center")`` for ``[B, C, H, W]``."""
    if hint.shape[-1] == width and hint.shape[-2] == height:
        return hint
    x, y, w, h = center_crop_box(hint.shape[-1], hint.shape[-2], width, height)
    return F.interpolate(hint[..., y:y + h, x:x + w], size=(height, width), mode="nearest-exact")


def broadcast_hint(hint: torch.Tensor, batch: int, batched_number: int) -> torch.Tensor:
    """ComfyUI's ``broadcast_image_to``: a batch of hints cycled over each of the ``batched_number`` equal chunks
    of a ``batch``-item evaluation (one chunk per conditioning batched together); a single hint stays as it is."""
    if hint.shape[0] in (1, batch):
        return hint
    per_chunk = batch // max(batched_number, 1)
    hint = hint[:per_chunk]
    if per_chunk > hint.shape[0]:
        hint = torch.cat([hint] * (per_chunk // hint.shape[0]) + [hint[:per_chunk % hint.shape[0]]])
    return hint if hint.shape[0] == batch else torch.cat([hint] * batched_number)


def merge_controls(own: Mapping[str, list[Any]], previous: Mapping[str, list[Any]] | None) -> dict[str, list[Any]]:
    """Two control dicts summed entry by entry (ComfyUI's ``control_merge``): a ``None`` or missing entry of
    one takes the other's."""
    out = {key: list(own.get(key, ())) for key in ("input", "middle", "output")}
    for key, entries in (previous or {}).items():
        mine = out.setdefault(key, [])
        for i, prev in enumerate(entries):
            if i >= len(mine):
                mine.append(prev)
            elif prev is not None:
                mine[i] = prev if mine[i] is None else prev + mine[i]
    return out


class ControlBase:
    """What ControlNets and T2I-Adapters share: the hint, strength, schedule and chain (ComfyUI's ControlBase).

    :ivar patcher: the network's weights (shared by every copy).
    :ivar family: the SD family the network was made for (``sd1``, ``sd2``, ``sdxl``...).
    """

    kind = "control"
    concat_mask = False  # ComfyUI's flag for inpainting ControlNets that take the mask as a channel (SD3/Flux)

    def __init__(self, patcher: PatchedModel, family: str, source: Any = None) -> None:
        self.patcher = patcher
        self.family = family
        self.source = source  # the load cache's record: the weights live while a value uses them
        self.cond_hint_original: torch.Tensor | None = None
        self.strength = 1.0
        self.timestep_percent_range = (0.0, 1.0)
        self.previous_controlnet: ControlBase | None = None
        self.vae: Any = None
        self.extra_args: dict[str, Any] = {}
        self.extra_concat: list[torch.Tensor] = []
        self._hint_cache: tuple[tuple, torch.Tensor] | None = None

    @property
    def name(self) -> str:
        return self.patcher.name

    @property
    def hint_channels(self) -> int:
        """Channels of the hint the network reads (3: RGB; a 1-channel T2I-Adapter averages an RGB hint)."""
        raise NotImplementedError

    # -- ComfyUI's setters, used by the apply nodes and by custom nodes ---------------------------------------

    def copy(self) -> ControlBase:
        """A new value sharing the weights, with this one's settings and no hint cache."""
        twin = copy.copy(self)
        twin.extra_args = dict(self.extra_args)
        twin._hint_cache = None
        return twin

    def set_cond_hint(self, cond_hint: torch.Tensor, strength: float = 1.0,
                      timestep_percent_range: tuple[float, float] = (0.0, 1.0), vae: Any = None,
                      extra_concat: list[torch.Tensor] | None = None) -> ControlBase:
        """The hint ``[B, C, H, W]`` in 0..1, the strength and the part of the schedule it applies to."""
        self.cond_hint_original = cond_hint
        self.strength = float(strength)
        self.timestep_percent_range = (float(timestep_percent_range[0]), float(timestep_percent_range[1]))
        self.vae = vae
        self.extra_concat = list(extra_concat or [])
        self._hint_cache = None
        return self

    def set_previous_controlnet(self, controlnet: ControlBase | None) -> ControlBase:
        self.previous_controlnet = controlnet
        return self

    def set_extra_arg(self, name: str, value: Any) -> None:
        self.extra_args[name] = value

    def get_models(self) -> list[PatchedModel]:
        """The weights of the whole chain, earliest first."""
        earlier = self.previous_controlnet.get_models() if self.previous_controlnet is not None else []
        return [*earlier, self.patcher]

    # -- ComfyUI's names, for custom nodes written against its ControlBase ----------------------------------------

    @property
    def control_model(self) -> torch.nn.Module | None:
        # None for a Control-LoRA no MODEL has evaluated with yet, as ComfyUI's before its pre_run.
        return None if self.patcher is None else self.patcher.module

    @property
    def control_model_wrapped(self) -> PatchedModel:
        return self.patcher

    def pre_run(self, model: Any, percent_to_timestep_function: Any = None) -> None:
        """Nothing to do: the percents become sigmas with the evaluating MODEL's schedule at each call."""

    def cleanup(self) -> None:
        """Drops the resized hint (ComfyUI calls it after sampling)."""
        self._hint_cache = None
        if self.previous_controlnet is not None:
            self.previous_controlnet.cleanup()

    def inference_memory_requirements(self, dtype: Any = None) -> int:
        return 0  # the manager asks the network's own estimate when it loads it

    def memory_bytes(self) -> int:
        """Bytes of the chain's weights, for the executor's ``ram`` cache when it weighs outputs to evict."""
        return sum({id(p.weights): p.memory_bytes() for p in self.get_models()}.values())

    # -- the evaluation ----------------------------------------------------------------------------------------

    def get_control(self, x_in: torch.Tensor, sigma: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                    y: torch.Tensor | None, model: Any = None, batched_number: int = 1,
                    **_: Any) -> dict[str, list[Any]] | None:
        """The chain's residuals for one UNet evaluation (the contract of :meth:`SDModel.denoise`), or None.

        ``x_in``: the UNet's input; ``sigma`` / ``timestep``: ``[B]``; ``context``: the cross-attention cond;
        ``y``: the ADM vector or None; ``model``: the MODEL evaluating (its schedule maps the percents);
        ``batched_number``: how many conditionings share the batch.
        """
        previous = None
        if self.previous_controlnet is not None:
            previous = self.previous_controlnet.get_control(x_in, sigma, timestep, context, y, model=model,
                                                            batched_number=batched_number)
        sampling = getattr(model, "sampling", None) or _DEFAULT_SAMPLING
        start, end = (sampling.percent_to_sigma(p) for p in self.timestep_percent_range)
        level = float(sigma.reshape(-1)[0])
        if level > start or level < end:
            return previous
        if self.cond_hint_original is None:
            raise ValueError(f"{self.kind} {self.name!r} has no hint image: apply it with ControlNetApplyAdvanced")
        self._check_model(model, context, y)
        with torch.no_grad():
            default_manager().ensure_loaded(self._resident(model), input_shape=tuple(x_in.shape),
                                   dtype=compute_dtype_of(self.patcher.module))
            own = self._residuals(x_in, timestep, context, y, batched_number)
        scaled = {key: [None if r is None else (r * self.strength).to(x_in.dtype) for r in entries]
                  for key, entries in own.items()}
        return merge_controls(scaled, previous)

    def _resident(self, model: Any) -> list[PatchedModel]:
        # With the UNet, so loading this network never evicts the UNet that runs right after it.
        unet = getattr(model, "patcher", None)
        return [unet, self.patcher] if isinstance(unet, PatchedModel) else [self.patcher]

    def _check_model(self, model: Any, context: torch.Tensor, y: torch.Tensor | None) -> None:
        raise NotImplementedError

    def _residuals(self, x_in: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                   y: torch.Tensor | None, batched_number: int) -> dict[str, list[Any]]:
        raise NotImplementedError

    def _mismatch(self, model: Any, detail: str) -> ValueError:
        what = f"the MODEL is {model.family}" if getattr(model, "family", None) else detail
        return ValueError(f"{self.kind} {self.name!r} is for {self.family} models but {what}: load a {self.kind} "
                          f"made for the checkpoint's family")

    def _hint(self, width: int, height: int, channels: int) -> torch.Tensor:
        hint = self.cond_hint_original
        if hint.ndim != 4 or not (hint.shape[1] == channels or (channels == 1 and hint.shape[1] == 3)):
            raise ValueError(f"{self.kind} {self.name!r} takes a {channels}-channel hint image; the image given has "
                             f"shape {list(hint.movedim(1, -1).shape)} ([B, H, W, C]): give an RGB IMAGE")
        key = (width, height)
        if self._hint_cache is None or self._hint_cache[0] != key:
            self._hint_cache = (key, resize_hint(hint.float(), width, height))
        return self._hint_cache[1]

    def __repr__(self) -> str:
        # The identity is part of it: the samplers batch conditionings whose options have equal reprs, and two
        # ControlNet values batch together only when they are one object (ComfyUI compares them with `is`).
        return (f"<{type(self).__name__} {self.name!r} ({self.family}) strength {self.strength} "
                f"{self.timestep_percent_range}{' chained' if self.previous_controlnet else ''} at {id(self):#x}>")


class ControlNet(ControlBase):
    """A ControlNet (:class:`hearth_sd.controlnet_model.ControlNetModel`)."""

    kind = "ControlNet"

    def __init__(self, patcher: PatchedModel, family: str, source: Any = None,
                 global_average_pooling: bool = False) -> None:
        super().__init__(patcher, family, source)
        self.global_average_pooling = global_average_pooling

    @property
    def hint_channels(self) -> int:
        return self.patcher.module.config.hint_channels

    def _check_model(self, model: Any, context: torch.Tensor, y: torch.Tensor | None) -> None:
        config = self.patcher.module.config.unet
        if context.shape[-1] != config.context_dim or (y is None) != (config.adm_in_channels is None):
            raise self._mismatch(model, f"its conditioning is {context.shape[-1]} wide, not {config.context_dim}")

    def _residuals(self, x_in: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                   y: torch.Tensor | None, batched_number: int) -> dict[str, list[Any]]:
        module = self.patcher.module
        ratio = module.config.downscale
        hint = self._hint(x_in.shape[3] * ratio, x_in.shape[2] * ratio, module.config.hint_channels)
        hint = broadcast_hint(hint.to(x_in.device), x_in.shape[0], batched_number)
        out = module(x_in, hint, timestep.float(), context, y, control_type=self.extra_args.get("control_type"))
        if self.global_average_pooling:
            out = {key: [r.mean(dim=(2, 3), keepdim=True).expand_as(r) for r in entries]
                   for key, entries in out.items()}
        return out


class T2IAdapter(ControlBase):
    """A T2I-Adapter (:mod:`hearth_sd.t2i_adapter`): its features depend on the hint only, so they are computed
    once per hint size and reused every step."""

    kind = "T2I-Adapter"

    def __init__(self, patcher: PatchedModel, family: str, source: Any = None) -> None:
        super().__init__(patcher, family, source)
        self._features: tuple[tuple, dict[str, list[Any]]] | None = None

    def copy(self) -> T2IAdapter:
        twin = super().copy()
        twin._features = None
        return twin

    def set_cond_hint(self, *args: Any, **kwargs: Any) -> ControlBase:
        self._features = None
        return super().set_cond_hint(*args, **kwargs)

    @property
    def hint_channels(self) -> int:
        return self.patcher.module.input_channels

    def _check_model(self, model: Any, context: torch.Tensor, y: torch.Tensor | None) -> None:
        xl = getattr(self.patcher.module, "xl", False)
        model_xl = getattr(model, "family", None) in XL_FAMILIES if getattr(model, "family", None) else y is not None
        if xl != model_xl:
            raise self._mismatch(model, "the MODEL takes " + ("an" if y is not None else "no") + " ADM vector")

    def _residuals(self, x_in: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                   y: torch.Tensor | None, batched_number: int) -> dict[str, list[Any]]:
        module = self.patcher.module
        step = module.unshuffle_amount
        width, height = -(-x_in.shape[3] * 8 // step) * step, -(-x_in.shape[2] * 8 // step) * step
        hint = self._hint(width, height, module.input_channels)
        if module.input_channels == 1 and hint.shape[1] > 1:
            hint = hint.mean(dim=1, keepdim=True)
        hint = broadcast_hint(hint, x_in.shape[0], batched_number)
        key = (tuple(hint.shape), x_in.device)
        if self._features is None or self._features[0] != key:
            features = module(hint.to(x_in.device, compute_dtype_of(module)))
            self._features = (key, features)
        return {name: list(entries) for name, entries in self._features[1].items()}
