"""What every sampler shares: the probability-flow ODE derivative, the ancestral split of a step, churn, noise.

Samplers work in k-diffusion's variance-exploding form: a noisy latent is ``x = x0 + sigma * noise`` and the
model is a denoiser ``model(x, sigma, **extra_args) -> x0 estimate`` (Karras et al. 2022, section 2).

Flow-matching models (rectified flow, ComfyUI's ``CONST`` model sampling: Wan, SD3, Flux) noise a latent as
``x = (1 - sigma) * x0 + sigma * noise`` with ``sigma`` in 0..1. Their probability-flow ODE written in sigma is the
same as the variance-exploding one (``x - x0`` is proportional to sigma along an exact trajectory), so deterministic
steps need no change; the stochastic samplers whose ComfyUI forms have a rectified-flow branch renoise along the
flow's marginals, as ComfyUI's do (:func:`flow_ancestral_split`), and the others keep their variance-exploding noise
on a flow model, as ComfyUI's do. A sampler finds out through :func:`is_flow`: the model sampling declares
``prediction = "flow"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def append_dims(value: torch.Tensor, ndim: int) -> torch.Tensor:
    """``value`` with trailing singleton dimensions, so a per-batch sigma broadcasts over ``[B, C, H, W]``."""
    missing = ndim - value.ndim
    if missing < 0:
        raise ValueError(f"cannot broadcast a {value.ndim}-d tensor over {ndim} dimensions")
    return value[(...,) + (None,) * missing]


def to_d(x: torch.Tensor, sigma: torch.Tensor | float, denoised: torch.Tensor) -> torch.Tensor:
    """dx/dsigma of the probability-flow ODE, from the denoiser output (Karras et al. 2022, eq. 3)."""
    if isinstance(sigma, float):
        return (x - denoised) / sigma
    return (x - denoised) / append_dims(sigma, x.ndim)


def ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """Split a step into a deterministic part down to ``sigma_down`` and fresh noise of std ``sigma_up``.

    ``sigma_down**2 + sigma_up**2 == sigma_to**2``; ``eta = 1`` is DDPM's posterior variance, 0 no noise.
    Plain floats: the samplers do their per-step scalar arithmetic in Python, not in one-element tensors,
    which would cost a kernel launch per operation.
    """
    if not eta:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    return (sigma_to**2 - sigma_up**2) ** 0.5, sigma_up


def model_sampling_of(model: object) -> object | None:
    """The model sampling behind a sampler's denoiser, or None.

    Duck-typed: the first ``sampling`` attribute with a ``sigma_max`` found on the denoiser or on what it wraps
    (``model``, ``denoiser``, ``inner_model``), so any guider or wrapper that keeps its MODEL reachable works.
    """
    obj = model
    for _ in range(8):
        if obj is None:
            return None
        sampling = getattr(obj, "sampling", None)
        if sampling is not None and hasattr(sampling, "sigma_max"):
            return sampling
        for name in ("model", "denoiser", "inner_model"):
            inner = getattr(obj, name, None)
            if inner is not None and inner is not obj:
                obj = inner
                break
        else:
            return None
    return None


def is_flow(model: object) -> bool:
    """Whether the denoiser belongs to a flow-matching model (its model sampling has ``prediction == "flow"``)."""
    return getattr(model_sampling_of(model), "prediction", None) == "flow"


def ancestral_step_flow(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float, float]:
    """The ancestral split of a flow step: ``(sigma_down, alpha_ratio, sigma_up)``.

    The deterministic part goes to ``sigma_down = sigma_to * (1 + (sigma_to / sigma_from - 1) * eta)`` (ComfyUI's
    rectified-flow rule; ``eta = 1`` gives ``sigma_to**2 / sigma_from``). A latent there,
    ``(1 - sigma_down) * x0 + sigma_down * noise``, becomes one at ``sigma_to`` by scaling the signal with
    ``alpha_ratio = (1 - sigma_to) / (1 - sigma_down)`` and adding fresh noise of std
    ``sigma_up = sqrt(sigma_to**2 - (alpha_ratio * sigma_down)**2)``: ``x = alpha_ratio * x + sigma_up * noise``.
    """
    if not eta or sigma_to <= 0:
        return sigma_to, 1.0, 0.0
    sigma_down = max(0.0, sigma_to * (1 + (sigma_to / sigma_from - 1) * eta))
    alpha_ratio = (1 - sigma_to) / (1 - sigma_down)
    sigma_up = max(0.0, sigma_to**2 - (alpha_ratio * sigma_down) ** 2) ** 0.5
    return sigma_down, alpha_ratio, sigma_up


def flow_ancestral_split(sigma: torch.Tensor, sigma_next: torch.Tensor,
                         eta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`ancestral_step_flow`'s split as ComfyUI's rectified-flow samplers compute it: float32 0-d tensors in
    their order of operations, so the latents are ComfyUI's to the bit. ``(sigma_down, alpha_ratio, renoise)``:
    step to ``sigma_down``, then ``x = alpha_ratio * x + renoise * noise``. An ``eta`` past 1 (below 0 in ComfyUI,
    which then gives NaN) stops at sigma_down 0."""
    sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta)
    if sigma_down < 0:
        sigma_down = torch.zeros_like(sigma_down)
    alpha_next, alpha_down = 1 - sigma_next, 1 - sigma_down
    renoise = (sigma_next**2 - sigma_down**2 * alpha_next**2 / alpha_down**2) ** 0.5
    return sigma_down, alpha_next / alpha_down, renoise


def flow_offset_first_sigma(model: object, sigmas: torch.Tensor) -> torch.Tensor:
    """A flow schedule starting at sigma 1 (infinite log-SNR) starts at the sigma 0.01% of the way in instead.

    What ComfyUI does for the solvers working in log-SNR; the model is then asked for its estimate at that sigma.
    """
    if len(sigmas) <= 1 or float(sigmas[0]) < 1.0:
        return sigmas
    sampling = model_sampling_of(model)
    to_sigma = getattr(sampling, "percent_to_sigma", None)
    first = float(to_sigma(1e-4)) if to_sigma is not None else 1.0 - 1e-4
    if not 0.0 < first < 1.0:
        first = 1.0 - 1e-4
    sigmas = sigmas.clone()
    sigmas[0] = first
    return sigmas


def flow_half_log_snr(sigma: float) -> float:
    """``log(alpha / sigma)`` of a flow latent: ``log((1 - sigma) / sigma)`` (minus infinity at sigma 1)."""
    if sigma >= 1.0:
        return -math.inf
    if sigma <= 0.0:
        return math.inf
    return math.log((1.0 - sigma) / sigma)


def flow_sigma_of(half_log_snr: float) -> float:
    """The inverse of :func:`flow_half_log_snr`: ``1 / (1 + exp(half_log_snr))``."""
    if half_log_snr > 0:
        e = math.exp(-half_log_snr)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(half_log_snr))


def gaussian_noise(x: torch.Tensor, generator: torch.Generator | None = None) -> NoiseSampler:
    """A noise sampler drawing independent standard normal noise shaped like ``x`` at every call.

    With a CPU ``generator`` the noise is drawn on the CPU and moved, so a seed gives one result on any device.
    """
    if generator is None:
        return lambda sigma, sigma_next: torch.randn_like(x)
    shape, dtype, device = x.shape, x.dtype, x.device

    def sample(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)

    return sample


def seeded_noise(x: torch.Tensor, seed: int) -> NoiseSampler:
    """ComfyUI's ``default_noise_sampler(x, seed)``: one generator on ``x``'s device, each call the next ``randn`` of
    ``x``'s shape and dtype.

    On a GPU the generator is seeded with ``seed``: a CUDA generator's numbers differ from the CPU generator's that
    drew the initial noise. On the CPU it is seeded with ``seed + 1``, as ComfyUI does since its PR #11528 (issue
    #9819, after 0.3.64): seeded with ``seed`` itself, the first step's noise was the initial noise again, so
    every ancestral and SDE-style sampler added the same noise twice on a CPU and drew too noisy a picture.
    """
    if x.device.type == "cpu":
        seed = int(seed) + 1
    generator = torch.Generator(device=x.device).manual_seed(int(seed) % 2**64)
    shape, dtype, device = x.shape, x.dtype, x.device
    return lambda sigma, sigma_next: torch.randn(shape, dtype=dtype, device=device, generator=generator)


def default_noise_sampler(x: torch.Tensor, seed: int | None = None) -> NoiseSampler:
    """ComfyUI's ``default_noise_sampler``: :func:`seeded_noise` for a seed, else unseeded ``randn`` each call."""
    if seed is None:
        return lambda sigma, sigma_next: torch.randn_like(x)
    return seeded_noise(x, seed)


def churn(sigmas: list[float], i: int, s_churn: float, s_tmin: float, s_tmax: float,
          flow: bool = False) -> tuple[float, float]:
    """Karras et al. 2022, Algorithm 2, lines 4-5: how far to raise sigma before step ``i`` (gamma, sigma_hat).

    A flow model's sigma cannot pass 1 (pure noise): there ``sigma_hat`` stops at 1 and gamma shrinks to match.
    """
    gamma = 0.0
    if s_churn > 0 and s_tmin <= sigmas[i] <= s_tmax:
        gamma = min(s_churn / (len(sigmas) - 1), math.sqrt(2.0) - 1)
    if flow and gamma > 0 and sigmas[i] * (gamma + 1) > 1.0:
        gamma = max(0.0, 1.0 / sigmas[i] - 1)
        return gamma, (1.0 if gamma > 0 else sigmas[i])
    return gamma, sigmas[i] * (gamma + 1)


def add_churn_noise(x: torch.Tensor, sigma: float, sigma_hat: float, s_noise: float,
                    noise_sampler: NoiseSampler | None, flow: bool = False) -> torch.Tensor:
    """Raise ``x`` from ``sigma`` to ``sigma_hat`` with fresh noise (Algorithm 2, line 6).

    For a flow model (``flow``) the signal shrinks by ``(1 - sigma_hat) / (1 - sigma)`` and the added noise tops
    the std up to ``sigma_hat``, so the result is a flow latent at ``sigma_hat``.
    """
    noise = torch.randn_like(x) if noise_sampler is None else noise_sampler(sigma, sigma_hat)
    if flow:
        sigma, sigma_hat = float(sigma), float(sigma_hat)
        ratio = (1 - sigma_hat) / (1 - sigma)
        return x * ratio + noise * s_noise * max(0.0, sigma_hat**2 - (ratio * sigma) ** 2) ** 0.5
    return x + noise * s_noise * (sigma_hat**2 - sigma**2) ** 0.5


def report(callback, x, i, sigma, sigma_hat, denoised) -> None:
    """Call the sampler's callback with k-diffusion's step dictionary."""
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})


# advance(x, denoised, history, i, levels) -> x at levels[i + 1]; history holds the ODE derivatives, newest first.
MultistepRule = Callable[[torch.Tensor, torch.Tensor, Sequence[torch.Tensor], int, list[float]], torch.Tensor]


def multistep(model, x: torch.Tensor, sigmas: torch.Tensor, advance: MultistepRule, *, name: str, max_order: int,
              extra_args=None, callback=None) -> torch.Tensor:
    """The loop of the linear multistep samplers that keep the last ``max_order`` derivatives (iPNDM, DEIS).

    Each step asks the model for its estimate, reports it, puts the step's derivative first in the history and
    lets ``advance`` weigh the history into the next ``x``; the samplers differ only in those weights.

    :raises ValueError: naming the sampler ``name`` when ``max_order`` is not 1 to 4.
    """
    if not 1 <= max_order <= 4:
        raise ValueError(f"{name} max_order must be 1 to 4, got {max_order}")
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    history: list[torch.Tensor] = []
    levels = sigmas.tolist()
    for i in range(len(levels) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        history.insert(0, (x - denoised) / levels[i])
        del history[max_order:]
        x = advance(x, denoised, history, i, levels)
    return x
