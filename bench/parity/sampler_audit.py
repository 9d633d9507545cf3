"""Every sampler of ComfyUI's KSampler list on one toy denoiser, on each family's model sampling (eps, flow, Flux), at
several step counts: the step arithmetic and step noise of each side, without a checkpoint.

Run by ``bench/comfyui_parity.py --sampler-audit`` in each venv: ``PYTHON bench/parity/sampler_audit.py --project
comfyui|hearth --out DUMP.safetensors [--comfyui PATH]``. Each side computes its own schedule
(each of ComfyUI's schedulers through its KSampler's rules: the samplers that drop the penultimate sigma, and
denoise 0.6), the model sampling's timestep of each sigma, takes its start
latent from ``torch.randn`` of a fixed seed scaled by the first sigma, and samples with its own sampler function
and its own step noise from ``SEED``; the dump holds every schedule and result. The toy denoiser is a guided pair
of elementwise functions, so the CFG++ samplers get an unconditional prediction to use. Imports neither project at
module level.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import types
from pathlib import Path
from typing import Any

# The model samplings: SD's discrete eps; rectified flow with shift 3 as SD3 and Wan (ModelSamplingSD3), and with
# multiplier 1 as Z-Image (ModelSamplingAuraFlow); Flux's exponential shift (ModelSamplingFlux).
KINDS = ("eps", "flow", "aura", "flux")
SCHEDULERS = ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta", "linear_quadratic",
              "kl_optimal")  # ComfyUI 0.3.64 KSampler's list
STEPS = (1, 2, 3, 6, 11)
SEED = 123
FLOW_SHIFT = 3.0
FLUX_SHIFT = 1.15
DENOISE = 0.6  # the schedule below denoise 1 is compared too (not sampled)
CFG = 2.5


def conditional(x, sigma):
    s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    return (x / (1 + s)).tanh() * 0.5 + 0.1 * x.mean()


def unconditional(x, sigma):
    s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    return (x / (2 + s)).tanh() * 0.3 - 0.05


def guided(x, sigma, post_cfg: list) -> Any:
    """CFG of the toy pair, then the post-CFG functions a CFG++ sampler registers (as ComfyUI's sampling calls them)."""
    cond, uncond = conditional(x, sigma), unconditional(x, sigma)
    out = uncond + (cond - uncond) * CFG
    for fn in post_cfg:
        out = fn({"denoised": out, "uncond_denoised": uncond, "cond_denoised": cond, "sigma": sigma, "input": x})
    return out


@contextlib.contextmanager
def failure(out: dict, key: str):
    """A case whose sampler raises is recorded as ``KEY/raises``: the same on both sides counts as agreeing."""
    try:
        yield
    except Exception:  # noqa: BLE001 - any error is the finding
        import torch

        out[f"{key}/raises"] = torch.zeros(1)


def start_latent(sigmas):
    import torch

    return torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * sigmas[0]


def comfyui_runs(comfyui: str) -> dict[str, Any]:
    sys.argv = [sys.argv[0], "--cpu"]
    sys.path.insert(0, comfyui)
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.model_sampling as ms
    import comfy.samplers

    sys.path.insert(0, str(Path(__file__).parent / "latent_pack"))
    from upstream_fixes import apply_all

    apply_all()  # ComfyUI's later fixes that Hearth follows (the CPU step noise's seed + 1)

    class Eps(ms.EPS, ms.ModelSamplingDiscrete):
        pass

    class Flow(ms.CONST, ms.ModelSamplingDiscreteFlow):
        pass

    class Flux(ms.CONST, ms.ModelSamplingFlux):
        pass

    def sampling_of(kind: str):
        if kind == "eps":
            return Eps()
        sampling = Flux() if kind == "flux" else Flow()
        if kind == "flux":
            sampling.set_parameters(shift=FLUX_SHIFT)
        else:
            sampling.set_parameters(shift=FLOW_SHIFT, multiplier=1.0 if kind == "aura" else 1000)
        return sampling

    class Denoiser:
        """What ComfyUI's sampler functions reach through ``model``: the model sampling and the model options."""

        def __init__(self, sampling) -> None:
            patcher = types.SimpleNamespace(get_model_object=lambda name: sampling)
            self.inner_model = types.SimpleNamespace(model_patcher=patcher,
                                                     inner_model=types.SimpleNamespace(model_sampling=sampling))

        def __call__(self, x, sigma, model_options=None, seed=None, **_):
            return guided(x, sigma, (model_options or {}).get("sampler_post_cfg_function", []))

    out: dict[str, Any] = {}
    for kind in KINDS:
        sampling = sampling_of(kind)
        for scheduler in SCHEDULERS:
            for steps in STEPS:
                for name in comfy.samplers.KSampler.SAMPLERS:
                    # ComfyUI's KSampler makes the schedule: its discard rule and its denoise rule.
                    owner = types.SimpleNamespace(get_model_object=lambda _name, sampling=sampling: sampling)
                    sigmas = comfy.samplers.KSampler(owner, steps, "cpu", name, scheduler, 1.0).sigmas
                    key = f"{kind}/{scheduler}/{steps}/{name}"
                    out[f"{key}/sigmas"] = sigmas.float().clone()  # ComfyUI's UniPC edits its sigmas in place
                    out[f"{key}/sigmas-d{DENOISE}"] = comfy.samplers.KSampler(owner, steps, "cpu", name, scheduler,
                                                                               DENOISE).sigmas.float()
                    out[f"{key}/timesteps"] = sampling.timestep(sigmas).float().clone()
                    sampler = comfy.samplers.sampler_object(name)
                    with failure(out, key):
                        out[key] = sampler.sampler_function(Denoiser(sampling), start_latent(sigmas), sigmas,
                                                            extra_args={"seed": SEED, "model_options": {}},
                                                            callback=None, disable=True, **sampler.extra_options)
    return out


def hearth_runs() -> dict[str, Any]:
    from hearth_samplers.catalog import SAMPLERS
    from hearth_samplers.model_sampling import DiscreteSampling, FlowSampling, FluxSampling
    from hearth_samplers.sampling import Sampler, _noise_sampler, ksampler_sigmas

    class Denoiser:
        def __init__(self, sampling) -> None:
            self.sampling, self.post_cfg = sampling, []

        def add_post_cfg_function(self, fn) -> None:
            self.post_cfg.append(fn)

        def __call__(self, x, sigma, **_):
            return guided(x, sigma, self.post_cfg)

    out: dict[str, Any] = {}
    for kind in KINDS:
        sampling = {"eps": lambda: DiscreteSampling("eps"), "flow": lambda: FlowSampling(shift=FLOW_SHIFT),
                    "aura": lambda: FlowSampling(shift=FLOW_SHIFT, multiplier=1.0),
                    "flux": lambda: FluxSampling(shift=FLUX_SHIFT)}[kind]()
        for scheduler in SCHEDULERS:
            for steps in STEPS:
                for name, fn in SAMPLERS.items():
                    sigmas = ksampler_sigmas(sampling, scheduler, name, steps)
                    sampler = Sampler(fn, name)
                    x = start_latent(sigmas)
                    noise = _noise_sampler(sampler, x, sigmas, SEED)
                    key = f"{kind}/{scheduler}/{steps}/{name}"
                    out[f"{key}/sigmas"] = sigmas.float().clone()
                    out[f"{key}/sigmas-d{DENOISE}"] = ksampler_sigmas(sampling, scheduler, name, steps, DENOISE).float()
                    out[f"{key}/timesteps"] = sampling.timestep(sigmas).float().clone()
                    with failure(out, key):
                        out[key] = fn(Denoiser(sampling), x, sigmas.clone(), extra_args={},
                                      **({"noise_sampler": noise} if sampler.takes_noise else {}))
    return out


def compare(comfyui: dict, hearth: dict) -> tuple[list[tuple[str, str, float | None]], list[str]]:
    """``(sampler, case, max |difference|)`` for every case each side ran (None where only one side has it), and the
    cases left out because ComfyUI's own schedule is NaN there (kl_optimal at one step divides 0 by 0; Hearth's is
    ``[sigma_max, 0]``)."""
    rows, nan_cases = [], set()
    for key in sorted(set(comfyui) | set(hearth)):
        kind, scheduler, steps, name, *rest = key.split("/")
        sigmas = comfyui.get(f"{kind}/{scheduler}/{steps}/{name}/sigmas")
        if sigmas is not None and bool(sigmas.isnan().any()):
            nan_cases.add(f"{kind}/{scheduler}/{steps}")
            continue
        case = f"{kind}/{scheduler}/{steps}" + "".join(f"/{part}" for part in rest)
        a, b = comfyui.get(key), hearth.get(key)
        if a is None or b is None or a.shape != b.shape:
            rows.append((name, case, None))
        else:
            rows.append((name, case, (a.double() - b.double()).abs().max().item()))
    return rows, sorted(nan_cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", choices=("comfyui", "hearth"), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--comfyui", default="")
    args = parser.parse_args()
    runs = comfyui_runs(args.comfyui) if args.project == "comfyui" else hearth_runs()
    import safetensors.torch

    safetensors.torch.save_file({key: value.contiguous() for key, value in runs.items()}, args.out)


if __name__ == "__main__":
    main()
