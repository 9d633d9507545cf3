"""ComfyUI's ``comfy.k_diffusion.sampling`` module: k-diffusion's samplers, schedules and helpers over Hearth's.

Every ``sample_<name>`` is the sampler the plugins register under ``<name>`` (``sample_euler`` is the ``euler`` that
Hearth's KSampler runs), read when asked, so a pack sees whatever samplers are installed. Each is called with
k-diffusion's signature ``sample_<name>(model, x, sigmas, extra_args=None, callback=None, disable=None, **options)``
(Hearth's samplers take the three after ``sigmas`` by keyword only; here they may come by position, as packs pass
them), and carries the registered function's signature, so ``inspect.signature`` still tells which options it
takes. ComfyUI's ``*_gpu`` variants are registered too (their Brownian noise drawn on the latent's device).

The schedules, ``to_d`` and ``get_ancestral_step`` follow k-diffusion's definitions and signatures (Crowson 2022;
schedules cite their papers). ``default_noise_sampler`` and ``BrownianTreeNoiseSampler`` are the sampling plugin's
(``resolve_sampling_engine``), which give ComfyUI's numbers for a seed; with no sampling plugin installed they fall
back to this module's own: the same rule for ``default_noise_sampler``, and a Brownian path of Hearth's own Lévy
construction (not torchsde's numbers) for the tree.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch

from hearth_comfy_compat import services
from hearth_comfy_compat.comfyui.comfy.k_diffusion.utils import append_dims, append_zero

__all__ = ["BrownianTreeNoiseSampler", "append_dims", "append_zero", "default_noise_sampler",
           "get_ancestral_step", "get_sigmas_exponential", "get_sigmas_karras", "get_sigmas_laplace",
           "get_sigmas_polyexponential", "get_sigmas_vp", "to_d"]

_GPU_SUFFIX = "_gpu"
_wrapped: dict[tuple[str, Callable[..., Any]], Callable[..., Any]] = {}


def _registered_sampler(name: str) -> Callable[..., Any] | None:
    found = services.registered("sampler")
    if name in found:
        return found[name]
    if name.endswith(_GPU_SUFFIX) and name[:-len(_GPU_SUFFIX)] in found:
        return found[name[:-len(_GPU_SUFFIX)]]
    return None


def _k_diffusion_signature(function: Callable[..., Any]) -> inspect.Signature:
    # extra_args, callback and disable become positional-or-keyword, as in k-diffusion.
    parameters = list(inspect.signature(function).parameters.values())
    positional = {"extra_args", "callback", "disable"}
    head = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    moved = [p.replace(kind=p.POSITIONAL_OR_KEYWORD) for p in parameters if p.name in positional]
    rest = [p for p in parameters if p not in head and p.name not in positional]
    return inspect.Signature([*head, *moved, *rest])


def _as_k_diffusion(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (Hearth's keyword-only signature) callable with k-diffusion's positional one."""
    key = (name, function)
    if key not in _wrapped:
        def sample(model: Any, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict[str, Any] | None = None,
                   callback: Callable[..., Any] | None = None, disable: bool | None = None,
                   **options: Any) -> torch.Tensor:
            return function(model, x, sigmas, extra_args=extra_args, callback=callback, disable=disable, **options)

        functools.update_wrapper(sample, function)  # keeps the sampler's attributes (noise = "brownian" ...)
        sample.__name__ = sample.__qualname__ = f"sample_{name}"
        sample.__module__ = __name__
        sample.__signature__ = _k_diffusion_signature(function)  # type: ignore[attr-defined]
        _wrapped[key] = sample
    return _wrapped[key]


def __getattr__(attr: str) -> Any:
    # sample_<name>: the sampler registered under <name>, read fresh (plugins may come and go between runtimes).
    if attr.startswith("sample_"):
        function = _registered_sampler(attr[len("sample_"):])
        if function is not None:
            return _as_k_diffusion(attr[len("sample_"):], function)
    raise AttributeError(attr)


def __dir__() -> list[str]:
    names = [f"sample_{name}" for name in services.registered("sampler")]
    return sorted({*globals(), *names})


def _schedule(name: str) -> Callable[..., torch.Tensor]:
    found = services.registered("scheduler")
    if name not in found:
        raise RuntimeError(f"comfy.k_diffusion.sampling.get_sigmas_{name} needs the {name!r} schedule, which no "
                           f"installed plugin registers (Hearth's samplers plugin does: pip install -e plugins/samplers)")
    return found[name]


def get_sigmas_karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0,
                      device: Any = "cpu") -> torch.Tensor:
    """Karras et al. 2022, eq. 5: the registered ``karras`` schedule (k-diffusion's argument order)."""
    return _schedule("karras")(n, sigma_min, sigma_max, device=device, rho=rho)


def get_sigmas_exponential(n: int, sigma_min: float, sigma_max: float, device: Any = "cpu") -> torch.Tensor:
    """Equal steps in log sigma: the registered ``exponential`` schedule."""
    return _schedule("exponential")(n, sigma_min, sigma_max, device=device)


def get_sigmas_polyexponential(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0,
                               device: Any = "cpu") -> torch.Tensor:
    """Log sigma falling along ``ramp ** rho`` (k-diffusion's polyexponential; ``rho = 1`` is exponential)."""
    ramp = torch.linspace(1, 0, n, device=device) ** rho
    log_min, log_max = math.log(sigma_min), math.log(sigma_max)
    return append_zero(torch.exp(ramp * (log_max - log_min) + log_min))


def get_sigmas_vp(n: int, beta_d: float = 19.9, beta_min: float = 0.1, eps_s: float = 1e-3,
                  device: Any = "cpu") -> torch.Tensor:
    """The continuous variance-preserving schedule of Song et al. 2021 (eq. 33), as sigmas."""
    t = torch.linspace(1, eps_s, n, device=device)
    return append_zero(torch.sqrt(torch.exp(beta_d * t ** 2 / 2 + beta_min * t) - 1))


def get_sigmas_laplace(n: int, sigma_min: float, sigma_max: float, mu: float = 0.0, beta: float = 0.5,
                       device: Any = "cpu") -> torch.Tensor:
    """Log sigma spaced by the quantiles of a Laplace distribution (Tiankai et al. 2024), clamped to the range."""
    eps = 1e-5
    x = torch.linspace(0, 1, n, device=device)
    centred = 0.5 - x
    log_sigma = mu - beta * torch.sign(centred) * torch.log(1 - 2 * torch.abs(centred) + eps)
    return append_zero(torch.exp(log_sigma).clamp(min=sigma_min, max=sigma_max))


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """dx/dsigma of the probability-flow ODE from a denoiser output (Karras et al. 2022, eq. 3)."""
    return (x - denoised) / append_dims(torch.as_tensor(sigma, device=x.device, dtype=x.dtype), x.ndim)


def get_ancestral_step(sigma_from: Any, sigma_to: Any, eta: float = 1.0) -> tuple[Any, Any]:
    """``(sigma_down, sigma_up)``: a step to ``sigma_to`` split into a deterministic part to ``sigma_down`` and
    fresh noise of std ``sigma_up`` (``sigma_down**2 + sigma_up**2 == sigma_to**2``; ``eta = 0``: no noise).
    Works on floats and on tensors alike."""
    if not eta:
        return sigma_to, 0.0
    variance = sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2
    sigma_up = eta * variance ** 0.5
    sigma_up = torch.minimum(torch.as_tensor(sigma_to), torch.as_tensor(sigma_up)) if isinstance(
        sigma_up, torch.Tensor) or isinstance(sigma_to, torch.Tensor) else min(sigma_to, sigma_up)
    return (sigma_to ** 2 - sigma_up ** 2) ** 0.5, sigma_up


def _engine() -> Any | None:
    """The sampling plugin's engine, or None when none is installed (the fallbacks below then answer)."""
    try:
        return services.sampling_engine()
    except RuntimeError:
        return None


def default_noise_sampler(x: torch.Tensor, seed: int | None = None) -> Callable[[Any, Any], torch.Tensor]:
    """``(sigma, sigma_next) -> noise``: independent standard normal noise shaped like ``x`` at each call; with a
    seed, from one generator on ``x``'s device seeded with it (ComfyUI's rule, so a pack's own sampler draws the
    same noise as in ComfyUI)."""
    engine = _engine()
    if engine is not None:
        return engine.default_noise_sampler(x, seed)
    if seed is None:
        return lambda sigma, sigma_next: torch.randn_like(x)
    generator = torch.Generator(x.device).manual_seed(int(seed) % 2 ** 64)
    shape, dtype, device = x.shape, x.dtype, x.device
    return lambda sigma, sigma_next: torch.randn(shape, dtype=dtype, device=device, generator=generator)


class BrownianTreeNoiseSampler:
    """k-diffusion's Brownian noise sampler: ``(sigma, sigma_next)`` gives the increment of one Brownian path over
    ``[transform(sigma), transform(sigma_next)]``, divided by the square root of its width, so the noise an SDE
    sampler adds over an interval does not depend on how the schedule cuts it.

    The sampling plugin's tree when one is installed (torchsde's numbers, as ComfyUI's). Without one the path is
    Hearth's own: the first query draws ``W`` at its two ends, each later one draws ``W`` at a new time from the
    Brownian bridge between the nearest known times. Same seed and same queries, same noise.
    """

    def __init__(self, x: torch.Tensor, sigma_min: Any, sigma_max: Any, seed: int | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] = lambda t: t, cpu: bool = False) -> None:
        engine = _engine()
        self.delegate = None if engine is None else engine.BrownianTreeNoiseSampler(
            x, sigma_min, sigma_max, seed=seed, transform=transform, cpu=cpu)
        if self.delegate is not None:
            return
        self.transform = transform
        self.shape, self.dtype, self.device = x.shape, x.dtype, x.device
        self.generator = torch.Generator("cpu")
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed) % 2 ** 64)
        t0 = float(transform(torch.as_tensor(sigma_min)))
        t1 = float(transform(torch.as_tensor(sigma_max)))
        self.t_min, self.t_max = min(t0, t1), max(t0, t1)
        self.path: dict[float, torch.Tensor] = {self.t_min: torch.zeros(self.shape)}
        self.path[self.t_max] = self._normal() * math.sqrt(self.t_max - self.t_min)

    def _normal(self) -> torch.Tensor:
        return torch.randn(self.shape, generator=self.generator)

    def _value(self, t: float) -> torch.Tensor:
        t = min(max(t, self.t_min), self.t_max)
        if t not in self.path:
            times = sorted(self.path)
            left = max(s for s in times if s < t)
            right = min(s for s in times if s > t)
            fraction = (t - left) / (right - left)
            mean = torch.lerp(self.path[left], self.path[right], fraction)
            self.path[t] = mean + self._normal() * math.sqrt((t - left) * (right - t) / (right - left))
        return self.path[t]

    def __call__(self, sigma: Any, sigma_next: Any) -> torch.Tensor:
        if self.delegate is not None:
            return self.delegate(sigma, sigma_next)
        t0 = float(self.transform(torch.as_tensor(sigma)))
        t1 = float(self.transform(torch.as_tensor(sigma_next)))
        if t0 == t1:
            return torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        increment = (self._value(max(t0, t1)) - self._value(min(t0, t1))) / math.sqrt(abs(t1 - t0))
        return increment.to(self.device, self.dtype)


# k-diffusion's name for its batched tree; packs that build one directly get the same sampler.
BatchedBrownianTree = BrownianTreeNoiseSampler
