"""Model predictions under guidance: regions batched into few model calls, and classifier-free guidance.

:func:`predict` evaluates several CONDITIONING lists on one noisy latent and returns one denoised prediction
per list, each the weighted average of its regions that apply at this sigma. Regions that fit one model call
(same crop size, same text length, same option keys) run together as one batch, as ComfyUI runs positive and
negative together.
"""

from __future__ import annotations

import math
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


def _group_key(region: Region, x: torch.Tensor) -> tuple:
    plain = []
    for key in sorted(region.model_options):
        value = region.model_options[key]
        plain.append((key, "tensor" if isinstance(value, torch.Tensor) else repr(value)))
    return (tuple(region.crop(x).shape), tuple(region.cond.shape[1:]), tuple(plain))


def _batched_options(regions: list[Region], batch: int, device: torch.device) -> dict[str, Any]:
    options = dict(regions[0].model_options)
    for key, value in options.items():
        if isinstance(value, torch.Tensor):
            options[key] = torch.cat([_repeat_to(r.model_options[key].to(device), batch) for r in regions])
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
        out = model.denoise(x_in, sigma_in, cond, _batched_options(regions, batch, x.device))
        for k, (index, region) in enumerate(members):
            weight = region.weight(x)
            region.crop(sums[index]).add_(out[k * batch:(k + 1) * batch] * weight)
            region.crop(weights[index]).add_(weight)
    return [None if s is None else s / w for s, w in zip(sums, weights, strict=True)]


def cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022, eq. 6) on denoised predictions."""
    return uncond + (cond - uncond) * scale


class Guidance:
    """The denoiser a sampler calls, ``(x, sigma) -> denoised``, for one model and its guidance."""

    def __init__(self, model: Any, positive: list[Region], negative: list[Region] | None, scale: float,
                 middle: list[Region] | None = None, scale_2: float = 1.0, style: str = "regular") -> None:
        self.model, self.positive, self.negative, self.middle = model, positive, negative, middle
        self.scale, self.scale_2, self.style = scale, scale_2, style

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **_: Any) -> torch.Tensor:
        if self.middle is not None:
            return self._dual(x, sigma)
        if self.negative is None or math.isclose(self.scale, 1.0):
            # At scale 1 the negative prediction cancels out: one model call instead of two.
            return predict(self.model, [self.positive], x, sigma)[0]
        cond, uncond = predict(self.model, [self.positive, self.negative], x, sigma)
        return cfg(cond, uncond, self.scale)

    def _dual(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        # DualCFGGuider (ComfyUI): "regular" guides the second conditioning from the negative and adds the first
        # one's difference from the second; "nested" guides the first from the second, then that from the
        # negative. Predictions a scale of 1 cancels are not computed.
        if self.style == "nested":
            if math.isclose(self.scale, 1.0):
                positive, negative = predict(self.model, [self.positive, self.negative], x, sigma)
                return cfg(positive, negative, self.scale_2)
            negative, middle, positive = predict(self.model, [self.negative, self.middle, self.positive], x, sigma)
            return cfg(cfg(positive, middle, self.scale), negative, self.scale_2)
        if math.isclose(self.scale_2, 1.0):
            middle, positive = predict(self.model, [self.middle, self.positive], x, sigma)
            return middle + (positive - middle) * self.scale
        negative, middle, positive = predict(self.model, [self.negative, self.middle, self.positive], x, sigma)
        return cfg(middle, negative, self.scale_2) + (positive - middle) * self.scale
