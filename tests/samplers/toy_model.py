"""A toy MODEL implementing the MODEL protocol of docs/data-types.md, for tests that need no real network."""

from __future__ import annotations

from typing import Any

import torch


class ToySampling:
    """SD's discrete schedule: 1000 steps of the scaled-linear betas, eps prediction."""

    prediction = "eps"

    def __init__(self) -> None:
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        self.sigmas = ((1 - alphas_cumprod) / alphas_cumprod).sqrt().float()
        self.log_sigmas = self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        dists = sigma.float().log() - self.log_sigmas[:, None]
        low = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=998)
        lo, hi = self.log_sigmas[low], self.log_sigmas[low + 1]
        w = ((lo - sigma.float().log()) / (lo - hi)).clamp(0, 1)
        return ((1 - w) * low + w * (low + 1)).view(sigma.shape)

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        t = timestep.float().clamp(0, 999)
        low, high = t.floor().long(), t.ceil().long()
        frac = t - low
        return ((1 - frac) * self.log_sigmas[low] + frac * self.log_sigmas[high]).exp()

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(self.sigma(torch.tensor((1.0 - percent) * 999.0)))


class ToyModel:
    """MODEL whose "network" predicts, for each batch item, the value its conditioning carries at [0, 0]
    (``constant=True``), or a smooth function of x and that value; it records every call."""

    latent_channels = 4
    patcher = None

    def __init__(self, constant: bool = False) -> None:
        self.sampling = ToySampling()
        self.constant = constant
        self.calls: list[dict[str, Any]] = []
        self.prepared: list[tuple[int, ...]] = []
        self.model_options: dict[str, Any] = {}

    def clone(self) -> ToyModel:
        twin = ToyModel(self.constant)
        twin.model_options = dict(self.model_options)
        return twin

    def process_latent_in(self, raw: torch.Tensor) -> torch.Tensor:
        return raw * 0.5

    def process_latent_out(self, scaled: torch.Tensor) -> torch.Tensor:
        return scaled / 0.5

    def prepare(self, batch_shape: tuple[int, ...]) -> torch.device:
        self.prepared.append(tuple(batch_shape))
        return torch.device("cpu")

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                options: dict[str, Any] | None = None) -> torch.Tensor:
        self.calls.append({"shape": tuple(x.shape), "x": x.clone(), "sigma": sigma.clone(), "cond": cond.clone(),
                           "options": dict(options or {})})
        value = cond[:, 0, 0].reshape(-1, 1, 1, 1).to(x.dtype)
        if self.constant:
            return value.expand_as(x).clone()
        s = sigma.reshape(-1, 1, 1, 1)
        return torch.tanh(x / (1 + s)) * 0.5 + value * 0.1


def text(value: float, batch: int = 1, tokens: int = 4, dim: int = 8) -> torch.Tensor:
    """A stand-in text embedding whose [0, 0] entry is ``value``."""
    cond = torch.zeros(batch, tokens, dim)
    cond[:, 0, 0] = value
    return cond
