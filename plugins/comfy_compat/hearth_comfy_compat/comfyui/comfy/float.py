"""``comfy.float``: rounding a patched weight back to its storage dtype, stochastically for 8-bit floats.

A weight patched in float32 and stored in fp8 loses the small deltas a LoRA adds when rounded to nearest; rounding
up or down at random, with the probability of each given by the distance to it, keeps them on average. ComfyUI
seeds the draw from the weight's key, so a model patches the same way every time. Wider dtypes round to nearest.
"""

from __future__ import annotations

import torch

_FLOAT8 = tuple(getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name))


def _neighbour(nearest: torch.Tensor, upward: torch.Tensor) -> torch.Tensor:
    """The fp8 value next to ``nearest`` in the direction asked (up where ``upward``), by stepping its bit pattern:
    fp8 is sign and magnitude, so a step away from zero is magnitude + 1, towards zero magnitude - 1."""
    bits = nearest.view(torch.uint8).to(torch.int16)
    sign, magnitude = bits & 0x80, bits & 0x7F
    positive = sign == 0
    away_from_zero = upward == positive
    stepped = torch.where(away_from_zero, magnitude + 1, magnitude - 1)
    # From a zero towards the other sign: the smallest magnitude of that sign.
    crossing = (magnitude == 0) & ~away_from_zero
    sign = torch.where(crossing, sign ^ 0x80, sign)
    stepped = torch.where(crossing, torch.ones_like(stepped), stepped)
    return (sign | stepped).to(torch.uint8).view(nearest.dtype)


def manual_stochastic_round_to_float8(x: torch.Tensor, dtype: torch.dtype,
                                      generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` rounded to the fp8 ``dtype`` up or down at random, each with probability one minus its distance
    (in units of the gap between them): unbiased on average. Values past the format's range are clamped."""
    limit = torch.finfo(dtype).max
    x = x.float().clamp(-limit, limit)
    nearest = x.to(dtype)
    exact = nearest.float()
    upward = exact < x
    other = _neighbour(nearest, upward).float()
    low = torch.where(upward, exact, other)
    high = torch.where(upward, other, exact)
    gap = high - low
    chance_up = torch.where(gap > 0, (x - low) / gap, torch.zeros_like(x))
    draw = torch.rand(x.shape, generator=generator, device=x.device) if generator is not None else torch.rand_like(x)
    rounded = torch.where(draw < chance_up, high, low)
    return torch.where(exact == x, exact, rounded).to(dtype)


def stochastic_rounding(value: torch.Tensor, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """``value`` in ``dtype``: stochastically rounded for fp8 (the draw seeded by ``seed``), to nearest else."""
    if dtype not in _FLOAT8:
        return value.to(dtype=dtype)
    generator = torch.Generator(device=value.device)
    generator.manual_seed(seed)
    return manual_stochastic_round_to_float8(value, dtype, generator=generator)
