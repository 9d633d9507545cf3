"""Model predictions under guidance: regions batched into few model calls, and classifier-free guidance.

:func:`predict` evaluates several CONDITIONING lists on one noisy latent and returns one denoised prediction
per list, each the weighted average of its regions that apply at this sigma. Regions that fit one model call
(same crop size, same text length, same option keys) run together as one batch, as ComfyUI runs positive and
negative together; the batch's ``options["cond_index"]`` (a ``[B]`` tensor) tells the model which list each
item predicts, from which the SD model builds ComfyUI's ``cond_or_uncond``.

:class:`Guidance` combines the predictions as ComfyUI's ``sampling_function`` does, honouring the functions
custom nodes store in the MODEL's ``model_options`` (read duck-typed, so any model family gets them):
``sampler_pre_cfg_function`` (list), ``sampler_cfg_function``, ``sampler_post_cfg_function`` (list) and
``disable_cfg1_optimization``. Their argument dicts carry ComfyUI's keys; see docs/data-types.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from .regions import Region

# Weights start from this, not 0, so a pixel that no region covers divides to 0 rather than NaN (ComfyUI's choice).
_EMPTY_WEIGHT = 1e-37


def _repeat_to(t: torch.Tensor, batch: int) -> torch.Tensor:
    if t.shape[0] == batch:
        return t
    repeats = -(-batch // t.shape[0])
    return t.repeat(repeats, *([1] * (t.ndim - 1)))[:batch]


# Flags the sampler has already acted on: entries differing only in them still share a model call (ComfyUI
# batches a ControlNetApply positive with the negative it shared its control with).
_NOT_BATCH_KEYS = frozenset({"control_apply_to_uncond"})


def _group_key(region: Region, x: torch.Tensor) -> tuple:
    plain = []
    for key in sorted(region.model_options.keys() - _NOT_BATCH_KEYS):
        value = region.model_options[key]
        plain.append((key, "tensor" if isinstance(value, torch.Tensor) else repr(value)))
    return (tuple(region.crop(x).shape), tuple(region.cond.shape[1:]), tuple(plain))


# Options the sampler adds at the latent's size (ComfyUI's extra_conds inputs): each region gets its crop of them.
LATENT_SIZED_OPTIONS = frozenset({"latent_image", "denoise_mask"})


def _batched_options(regions: list[Region], batch: int, device: torch.device) -> dict[str, Any]:
    options = dict(regions[0].model_options)
    for key, value in options.items():
        if isinstance(value, torch.Tensor):
            parts = [r.model_options[key].to(device) for r in regions]
            if key in LATENT_SIZED_OPTIONS:
                parts = [r.crop(part) for r, part in zip(regions, parts, strict=True)]
            options[key] = torch.cat([_repeat_to(part, batch) for part in parts])
    return options


def predict(model: Any, conditionings: list[list[Region] | None], x: torch.Tensor, sigma: torch.Tensor
            ) -> list[torch.Tensor | None]:
    """One denoised prediction per CONDITIONING list (``None`` stays ``None``) for noisy ``x`` at ``sigma``."""
    level = float(sigma.reshape(-1)[0])
    active: dict[tuple, list[tuple[int, Region]]] = {}
    for index, regions in enumerate(conditionings):
        for region in regions or ():
            if region.applies_at(level):
                active.setdefault(_group_key(region, x), []).append((index, region))
    sums = [None if c is None else torch.zeros_like(x) for c in conditionings]
    weights = [None if c is None else torch.full_like(x, _EMPTY_WEIGHT) for c in conditionings]
    batch = x.shape[0]
    for members in active.values():
        regions = [region for _, region in members]
        x_in = torch.cat([region.crop(x) for region in regions])
        cond = torch.cat([_repeat_to(region.cond.to(x.device), batch) for region in regions])
        sigma_in = sigma.reshape(-1).expand(batch).repeat(len(regions))
        options = _batched_options(regions, batch, x.device)
        # Which CONDITIONING list each batch item predicts (0: the first, usually the positive; 1: the negative).
        options["cond_index"] = torch.tensor([index for index, _ in members], device=x.device).repeat_interleave(batch)
        out = model.denoise(x_in, sigma_in, cond, options)
        for k, (index, region) in enumerate(members):
            weight = region.weight(x)
            region.crop(sums[index]).add_(out[k * batch:(k + 1) * batch] * weight)
            region.crop(weights[index]).add_(weight)
    return [None if s is None else s / w for s, w in zip(sums, weights, strict=True)]


def cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022, eq. 6) on denoised predictions."""
    return uncond + (cond - uncond) * scale


def perp_neg(positive: torch.Tensor, negative: torch.Tensor, empty: torch.Tensor, neg_scale: float,
             scale: float) -> torch.Tensor:
    """Perp-Neg (Armandpour et al. 2023): guidance from the empty prompt towards the positive, minus ``neg_scale``
    times the negative's component perpendicular to it (the projection over the whole batch, as ComfyUI's)."""
    pos, neg = positive - empty, negative - empty
    perpendicular = neg - (torch.mul(neg, pos).sum() / torch.norm(pos) ** 2) * pos
    return empty + scale * (pos - perpendicular * neg_scale)


def model_options_of(model: Any) -> Mapping[str, Any]:
    """The MODEL's ``model_options`` (ComfyUI's layout), or an empty mapping for a model without them."""
    options = getattr(model, "model_options", None)
    return options if isinstance(options, Mapping) else {}


def inner_model(model: Any) -> Any:
    """What ComfyUI passes as ``args["model"]``: its BaseModel, ``model.model`` here (``model_sampling`` ...)."""
    return getattr(model, "model", model)


def _check_prediction(what: str, value: Any, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.shape != like.shape:
        got = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"a custom node's {what} returned {got}, not a tensor of shape {list(like.shape)}: "
                         f"fix or remove the node that patched this MODEL")
    return value


def cfg_function(model: Any, options: Mapping[str, Any], cond_pred: torch.Tensor, uncond_pred: torch.Tensor,
                 scale: float, x: torch.Tensor, sigma: torch.Tensor, cond: Any = None,
                 uncond: Any = None) -> torch.Tensor:
    """ComfyUI's ``cfg_function``: :func:`cfg`, or the model's ``sampler_cfg_function``, then each
    ``sampler_post_cfg_function``.

    ``sampler_cfg_function`` works in noise space as ComfyUI's does: it receives ``cond = x - cond_pred`` and
    ``uncond = x - uncond_pred`` and returns a noise ``n``; the guided prediction is ``x - n``. The post-CFG
    functions receive the guided ``denoised`` and return a new one; their ``cond`` / ``uncond`` are the
    conditionings (Hearth's region lists; ``uncond`` is None where the negative was skipped).
    """
    fn = options.get("sampler_cfg_function")
    view = inner_model(model)
    if fn is not None:
        args = {"cond": x - cond_pred, "uncond": x - uncond_pred, "cond_scale": scale, "timestep": sigma,
                "input": x, "sigma": sigma, "cond_denoised": cond_pred, "uncond_denoised": uncond_pred,
                "model": view, "model_options": options}
        result = x - _check_prediction("sampler_cfg_function", fn(args), x)
    else:
        result = cfg(cond_pred, uncond_pred, scale)
    for post in options.get("sampler_post_cfg_function", ()):
        args = {"denoised": result, "cond": cond, "uncond": uncond, "cond_scale": scale, "model": view,
                "uncond_denoised": uncond_pred, "cond_denoised": cond_pred, "sigma": sigma,
                "model_options": options, "input": x}
        result = _check_prediction("sampler_post_cfg_function", post(args), x)
    return result


def _batch_sigma(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # ComfyUI's functions get sigma per batch item ([B]), as its samplers pass it.
    sigma = sigma.reshape(-1).to(x.device)
    return sigma.repeat(x.shape[0]) if sigma.shape[0] == 1 and x.shape[0] != 1 else sigma


class Guidance:
    """The denoiser a sampler calls, ``(x, sigma) -> denoised``, for one model and its guidance."""

    def __init__(self, model: Any, positive: list[Region], negative: list[Region] | None, scale: float,
                 middle: list[Region] | None = None, scale_2: float = 1.0, style: str = "regular") -> None:
        self.model, self.positive, self.negative, self.middle = model, positive, negative, middle
        self.scale, self.scale_2, self.style = scale, scale_2, style
        self.sampler_post_cfg: list[Any] = []

    def add_post_cfg_function(self, fn: Any) -> None:
        """A sampler's own post-CFG function for this run (the CFG++ samplers read the negative prediction with
        one), added after the MODEL's, with the negative always evaluated, as ComfyUI's samplers add theirs."""
        self.sampler_post_cfg.append(fn)

    def _options(self) -> Mapping[str, Any]:
        options = model_options_of(self.model)
        if not self.sampler_post_cfg:
            return options
        return {**options, "disable_cfg1_optimization": True,
                "sampler_post_cfg_function": [*options.get("sampler_post_cfg_function", ()), *self.sampler_post_cfg]}

    @property
    def inner_model(self) -> Any:
        """ComfyUI's ``guider.inner_model`` (its BaseModel): what ``denoise_mask_function``s read
        ``model_sampling`` from, via ``extra_options["model"].inner_model``."""
        return inner_model(self.model)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **_: Any) -> torch.Tensor:
        options = self._options()
        if self.style == "perp_neg":
            return self._perp_neg(x, sigma, options)
        if self.middle is not None:
            return self._dual(x, sigma, options)
        pre = options.get("sampler_pre_cfg_function", ())
        patched = bool(pre) or options.get("sampler_cfg_function") is not None or bool(options.get("sampler_post_cfg_function"))
        skip = math.isclose(self.scale, 1.0) and not options.get("disable_cfg1_optimization", False)
        uncond = None if skip else self.negative
        if uncond is None and not patched:
            # The negative prediction cancels out at scale 1 (or there is none): one model call instead of two.
            return predict(self.model, [self.positive], x, sigma)[0]
        conds = [self.positive, uncond]
        out = [torch.zeros_like(x) if p is None else p for p in predict(self.model, conds, x, sigma)]
        if not patched:
            return cfg(out[0], out[1], self.scale)
        sigma = _batch_sigma(sigma, x)
        for fn in pre:
            args = {"conds": conds, "conds_out": out, "cond_scale": self.scale, "timestep": sigma, "input": x,
                    "sigma": sigma, "model": self.inner_model, "model_options": options}
            out = list(fn(args))
        return cfg_function(self.model, options, out[0], out[1], self.scale, x, sigma, self.positive, uncond)

    def _dual(self, x: torch.Tensor, sigma: torch.Tensor, options: Mapping[str, Any]) -> torch.Tensor:
        # DualCFGGuider (ComfyUI): "regular" guides the second conditioning from the negative (through the model's
        # CFG functions) and adds the first one's difference from the second; "nested" guides the first from the
        # second (through them), then that from the negative. Predictions a scale of 1 cancels are not computed
        # (a skipped one counts as 0, as in ComfyUI), unless the model sets disable_cfg1_optimization.
        keep = options.get("disable_cfg1_optimization", False)
        sig = _batch_sigma(sigma, x)
        if self.style == "nested":
            middle = None if math.isclose(self.scale, 1.0) and not keep else self.middle
            negative, middle_out, positive = self._predict([self.negative, middle, self.positive], x, sigma)
            guided = cfg_function(self.model, options, positive, middle_out, self.scale, x, sig, self.positive, middle)
            return cfg(guided, negative, self.scale_2)
        negative = None if math.isclose(self.scale_2, 1.0) and not keep else self.negative
        # With both scales 1 ComfyUI skips the middle prediction too (it counts as 0 in both terms).
        middle = None if negative is None and math.isclose(self.scale, 1.0) and not keep else self.middle
        negative_out, middle_out, positive = self._predict([negative, middle, self.positive], x, sigma)
        guided = cfg_function(self.model, options, middle_out, negative_out, self.scale_2, x, sig, middle, negative)
        return guided + (positive - middle_out) * self.scale

    def _perp_neg(self, x: torch.Tensor, sigma: torch.Tensor, options: Mapping[str, Any]) -> torch.Tensor:
        # PerpNegGuider (ComfyUI): positive, negative and the empty prompt (``middle``) in one batch; the negative's
        # part perpendicular to the positive's guidance is removed from it (scaled by ``scale_2``, neg_scale). At
        # neg_scale 0 the negative is not computed, and at cfg 1 too the empty prompt, unless the model sets
        # disable_cfg1_optimization. The pre- and post-CFG functions run around it as in ComfyUI's guider.
        keep = options.get("disable_cfg1_optimization", False)
        negative, empty = self.negative, self.middle
        if not keep and math.isclose(self.scale_2, 0.0):
            negative = None
            if math.isclose(self.scale, 1.0):
                empty = None
        conds = [self.positive, negative, empty]
        out = self._predict(conds, x, sigma)
        sig = _batch_sigma(sigma, x)
        view = self.inner_model
        for fn in options.get("sampler_pre_cfg_function", ()):
            out = list(fn({"conds": conds, "conds_out": out, "cond_scale": self.scale, "timestep": sig, "input": x,
                           "sigma": sig, "model": view, "model_options": options}))
        positive_out, negative_out, empty_out = out
        result = perp_neg(positive_out, negative_out, empty_out, self.scale_2, self.scale)
        for post in options.get("sampler_post_cfg_function", ()):
            args = {"denoised": result, "cond": self.positive, "uncond": negative, "cond_scale": self.scale,
                    "model": view, "uncond_denoised": negative_out, "cond_denoised": positive_out, "sigma": sig,
                    "model_options": options, "input": x, "empty_cond": empty, "empty_cond_denoised": empty_out}
            result = _check_prediction("sampler_post_cfg_function", post(args), x)
        return result

    def _predict(self, conds: list[list[Region] | None], x: torch.Tensor, sigma: torch.Tensor) -> list[torch.Tensor]:
        return [torch.zeros_like(x) if p is None else p for p in predict(self.model, conds, x, sigma)]
