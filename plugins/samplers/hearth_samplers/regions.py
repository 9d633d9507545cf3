"""CONDITIONING entries as regions of the latent: where each applies, how strongly, and over which sigmas.

An entry ``[cond, options]`` applies to the whole latent unless its options give an ``area`` (``(h, w, y, x)`` in
latent pixels, or ``("percentage", h, w, y, x)``) or a ``mask``; ``strength`` scales it, ``start_percent`` /
``end_percent`` limit it to part of the schedule. Where entries overlap, the prediction is the average of
theirs weighted by strength and mask (ComfyUI's rule), and an area without a mask fades in over its inner 8
latent pixels so its edges do not show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .schedules import percent_to_sigma

# Options the sampler consumes; the rest (pooled_output, width, height...) go to the model.
SAMPLER_OPTIONS = frozenset({"area", "strength", "set_area_to_bounds", "mask", "mask_strength", "start_percent",
                             "end_percent"})
FEATHER = 8


@dataclass
class Region:
    """One CONDITIONING entry resolved for a latent of a given size."""

    cond: torch.Tensor
    model_options: dict[str, Any]
    area: tuple[int, int, int, int] | None = None  # (h, w, y, x), clamped to the latent
    mask: torch.Tensor | None = None  # [B, h, w] at latent size, times mask_strength
    strength: float = 1.0
    sigma_start: float | None = None  # applies while sigma <= sigma_start...
    sigma_end: float | None = None  # ...and sigma >= sigma_end
    _weights: dict[tuple, torch.Tensor] = field(default_factory=dict, repr=False)

    def applies_at(self, sigma: float) -> bool:
        if self.sigma_start is not None and sigma > self.sigma_start:
            return False
        return not (self.sigma_end is not None and sigma < self.sigma_end)

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        if self.area is None:
            return x
        h, w, y, left = self.area
        return x[:, :, y:y + h, left:left + w]

    def weight(self, x: torch.Tensor) -> torch.Tensor:
        """The per-pixel weight of this entry's prediction over its crop of ``x`` (cached per shape)."""
        key = (tuple(x.shape), x.device, x.dtype)
        cached = self._weights.get(key)
        if cached is None:
            cached = self._weights[key] = self._make_weight(x)
        return cached

    def _make_weight(self, x: torch.Tensor) -> torch.Tensor:
        crop_shape = self.crop(x).shape
        if self.mask is None:
            weight = torch.full(crop_shape, float(self.strength), dtype=x.dtype, device=x.device)
            if self.area is not None:
                _feather(weight, self.area, x.shape)
            return weight
        mask = self.mask.to(x.device, x.dtype)
        if self.area is not None:
            h, w, y, left = self.area
            mask = mask[:, y:y + h, left:left + w]
        mask = mask[: crop_shape[0]]
        mask = mask.unsqueeze(1).repeat(crop_shape[0] // mask.shape[0], crop_shape[1], 1, 1)
        return mask * self.strength


def _feather(weight: torch.Tensor, area: tuple[int, int, int, int], full: torch.Size) -> None:
    # Ramp the weight up over the edges that lie inside the latent: over min(8, size // 4) rows, 1/rr to rr/rr, the
    # factor computed as ComfyUI computes it (an 8-row ramp on an 8-row area weighted a shared crop differently).
    h, w, y, left = area
    for dim, (size, offset) in enumerate(((h, y), (w, left))):
        axis = dim + 2
        rows = min(FEATHER, size // 4)
        for t in range(rows):
            ramp = (1.0 / rows) * (t + 1)
            if offset != 0:
                weight.narrow(axis, t, 1).mul_(ramp)
            if size + offset < full[axis]:
                weight.narrow(axis, size - 1 - t, 1).mul_(ramp)


def _mask_bounds(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(h, w, y, x) of the box holding every nonzero pixel of any mask in the batch, or None if all are zero."""
    covered = mask.abs().amax(dim=0) > 0
    rows, cols = covered.any(dim=1).nonzero(), covered.any(dim=0).nonzero()
    if rows.numel() == 0:
        return None
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    return y1 - y0 + 1, x1 - x0 + 1, y0, x0


def _area(options: dict[str, Any], h: int, w: int) -> tuple[int, int, int, int] | None:
    area = options.get("area")
    if area is None:
        return None
    if area[0] == "percentage":
        ph, pw, py, px = area[1:]
        area = (max(1, round(ph * h)), max(1, round(pw * w)), round(py * h), round(px * w))
    ah, aw, ay, ax = (int(v) for v in area)
    # An area reaching past the latent is cut at its edge.
    return min(h - ay, ah), min(w - ax, aw), ay, ax


def resolve(conditioning: list, latent_shape: torch.Size, model_sampling: Any,
            device: torch.device | str = "cpu") -> list[Region]:
    """The regions of a CONDITIONING list for a latent batch of ``latent_shape`` ``[B, C, h, w]``."""
    h, w = int(latent_shape[2]), int(latent_shape[3])
    regions = []
    for index, entry in enumerate(conditioning):
        try:
            cond, options = entry[0], dict(entry[1])
        except (TypeError, IndexError, KeyError) as exc:
            raise ValueError(f"conditioning entry {index} is not a [tensor, options] pair") from exc
        # ComfyUI's encode_model_conds: a conditioning that names no size (plain CLIPTextEncode's) gets the whole
        # latent's, in pixels at 8 per latent pixel; SDXL's size embedding reads it (768 only outside a sampler).
        options.setdefault("width", int(latent_shape[-1]) * 8)
        options.setdefault("height", int(latent_shape[2]) * 8)
        area = _area(options, h, w)
        mask = options.get("mask")
        if mask is not None:
            mask = mask.float()
            if mask.ndim == 2:
                mask = mask.unsqueeze(0)
            if tuple(mask.shape[1:]) != (h, w):
                mask = F.interpolate(mask.unsqueeze(1), size=(h, w), mode="bilinear", align_corners=False).squeeze(1)
            if options.get("set_area_to_bounds", False):
                bounds = _mask_bounds(mask)
                # An empty mask still needs some area; the smallest the UNet takes is 8 x 8.
                area = (8, 8, 0, 0) if bounds is None else (max(8, bounds[0]), max(8, bounds[1]), bounds[2], bounds[3])
                area = (min(h - area[2], area[0]), min(w - area[3], area[1]), area[2], area[3])
            mask = (mask * float(options.get("mask_strength", 1.0))).to(device)
        start, end = options.get("start_percent"), options.get("end_percent")
        regions.append(Region(
            cond=cond.to(device),
            model_options={k: v for k, v in options.items() if k not in SAMPLER_OPTIONS},
            area=area,
            mask=mask,
            strength=float(options.get("strength", 1.0)),
            sigma_start=None if start is None else percent_to_sigma(model_sampling, float(start)),
            sigma_end=None if end is None else percent_to_sigma(model_sampling, float(end)),
        ))
    return regions


def _inside(area: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    """Whether ``area`` ``(h, w, y, x)`` lies within ``outer``."""
    h, w, y, x = area
    oh, ow, oy, ox = outer
    return y >= oy and x >= ox and y + h <= oy + oh and x + w <= ox + ow


def share_areas(*sides: list[Region]) -> None:
    """ComfyUI's matching-area rule, applied in place to the resolved sides (positive, [middle,] negative).

    For each entry with an area, every other side that has no entry of exactly that area gains one: a copy of the
    entry (its area, mask, strength, steps and ControlNet) carrying the model conditioning of that side's smallest
    entry containing the area (an entry with an area before one without). So an area prompt's crop is guided
    against the negative prompt on the same crop, as in ComfyUI's ``process_conds``; without it the negative was
    the whole-image prediction alone there (a full-size SD1.5 area workflow differed by 95 levels). Sides are
    visited in order and each side's list as it grows, as ComfyUI does.
    """
    for side in sides:
        for region in side:  # grows while visited: copies given to it by earlier sides are visited too
            if region.area is None:
                continue
            for other in sides:
                if other is not side:
                    _give_same_area(other, region)


def _give_same_area(side: list[Region], region: Region) -> None:
    assert region.area is not None
    smallest: Region | None = None
    for candidate in side:
        if candidate.area is None:
            smallest = candidate if smallest is None else smallest
        elif _inside(region.area, candidate.area) and (
                smallest is None or smallest.area is None
                or smallest.area[0] * smallest.area[1] > candidate.area[0] * candidate.area[1]):
            smallest = candidate
    if smallest is None or smallest.area == region.area:
        return
    kept = {key: region.model_options[key] for key in ("control", "gligen") if key in region.model_options}
    options = {key: value for key, value in smallest.model_options.items() if key not in ("control", "gligen")}
    side.append(Region(cond=smallest.cond, model_options={**options, **kept}, area=region.area, mask=region.mask,
                       strength=region.strength, sigma_start=region.sigma_start, sigma_end=region.sigma_end))


def share_control_with_negative(positive: list, negative: list) -> list:
    """The negative CONDITIONING with the positive's ControlNets, where ComfyUI's sampler gives them to it.

    ControlNetApply (ComfyUI's older node) puts ``control`` with ``control_apply_to_uncond`` on the positive only.
    ComfyUI's ``process_conds`` then hands those controls to the negative when no whole-image negative entry has
    a control of its own: the i-th control goes to whole-image negative entry ``i % n`` among those without one
    (copied, a later control replacing an earlier one). Returns a new list; the entries given are not changed.
    """
    def whole(entry: Any) -> bool:
        return isinstance(entry, (list, tuple)) and len(entry) > 1 and "area" not in entry[1]

    controls = [entry[1]["control"] for entry in positive if whole(entry) and entry[1].get("control_apply_to_uncond")
                and entry[1].get("control") is not None]
    if not controls or any(whole(e) and e[1].get("control") is not None for e in negative):
        return negative
    plain = [i for i, entry in enumerate(negative) if whole(entry)]
    if not plain:
        return negative
    shared = list(negative)
    for i, control in enumerate(controls):
        target = plain[i % len(plain)]
        cond, options = negative[target][0], negative[target][1]
        shared[target] = [cond, {**options, "control": control}]
    return shared

