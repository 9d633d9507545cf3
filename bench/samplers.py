"""Sampler overhead per model evaluation: Hearth's samplers beside k-diffusion's, same toy model, same run.

Run: ``.venv/bin/python bench/samplers.py [--steps N] [--size PX] [--repeats N] [--threads N]``. Every sampler
both have runs on one toy denoiser (a few elementwise ops on an SD-sized latent), interleaved with k-diffusion's,
after a warm-up. Overhead = wall time minus the time spent inside the model, divided by the model evaluations;
the table shows the best of the repeats (what other processes disturb least) and the ratio ours / k-diffusion,
target <= 1.05. Needs k-diffusion installed as in requirements/dev.txt (``pip install --no-deps k-diffusion``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hearth_samplers import schedules  # noqa: E402
from hearth_samplers.catalog import SAMPLERS  # noqa: E402

from tests.samplers.oracle import load_k_diffusion_sampling, toy_denoiser  # noqa: E402

NOISY = {"euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde"}
COMMON = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive",
          "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde"]


class TimedModel:
    """The toy denoiser, timing itself so the sampler's own time is what is left."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, x, sigma, **extra):
        start = time.perf_counter()
        out = toy_denoiser(x, sigma, **extra)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def overhead(fn, x, sigmas, name: str, kd: bool) -> float:
    """Seconds of sampler time per model evaluation for one run."""
    model = TimedModel()
    kwargs = {}
    if name in NOISY:
        generator = torch.Generator().manual_seed(0)
        kwargs["noise_sampler"] = lambda s, sn: torch.randn(x.shape, generator=generator, dtype=x.dtype)
    args: tuple = (sigmas,)
    if kd and name in ("dpm_fast", "dpm_adaptive"):
        args = (float(sigmas[-2]), float(sigmas[0])) + ((len(sigmas) - 1,) if name == "dpm_fast" else ())
    start = time.perf_counter()
    fn(model, x.clone(), *args, extra_args={"shift": 0.3}, disable=True, **kwargs)
    total = time.perf_counter() - start
    return (total - model.seconds) / model.calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=512, help="image size in pixels; the latent is 1/8")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kd = load_k_diffusion_sampling()
    sigmas = schedules.get_sigmas_karras(args.steps, 0.0292, 14.6146)
    side = args.size // 8
    x = torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(0)) * sigmas[0]

    print(f"sampler overhead per model evaluation: latent 1x4x{side}x{side}, {args.steps} steps, "
          f"{args.repeats} repeats, {args.threads} thread(s); best of repeats")
    print(f"  {'sampler':<20} {'hearth µs':>10} {'k-diff µs':>10} {'ratio':>7}")
    ratios = []
    for name in COMMON:
        ours_fn, theirs_fn = SAMPLERS[name], getattr(kd, f"sample_{name}")
        for _ in range(2):  # warm-up
            overhead(ours_fn, x, sigmas, name, False)
            overhead(theirs_fn, x, sigmas, name, True)
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(overhead(ours_fn, x, sigmas, name, False))
            theirs.append(overhead(theirs_fn, x, sigmas, name, True))
        ratio = min(ours) / min(theirs)
        ratios.append(ratio)
        print(f"  {name:<20} {min(ours) * 1e6:10.1f} {min(theirs) * 1e6:10.1f} {ratio:7.3f}"
              f"   (median {statistics.median(ours) * 1e6:.1f} / {statistics.median(theirs) * 1e6:.1f})")
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"  {'geometric mean':<20} {'':>10} {'':>10} {geomean:7.3f}   (target <= 1.05)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
