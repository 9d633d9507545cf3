"""This pack's catalog: its samplers and schedules by their ComfyUI names (what its ``register_*`` hooks return)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import (
    cfg_pp,
    ddim,
    ddpm,
    deis,
    discrete_schedules,
    dpm2,
    dpm_solver,
    dpmpp,
    dpmpp_sde,
    er_sde,
    euler,
    gradient_estimation,
    heun,
    ipndm,
    lcm,
    lms,
    res_multistep,
    sa_solver,
    schedules,
    seeds,
    uni_pc,
)


def _with_heun_solver(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``dpmpp_2m_sde_heun``: the 2M SDE sampler with its Heun solver type as the default."""

    def sample_dpmpp_2m_sde_heun(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0,
                                 s_noise=1.0, noise_sampler=None, solver_type="heun"):
        return fn(model, x, sigmas, extra_args=extra_args, callback=callback, disable=disable, eta=eta,
                  s_noise=s_noise, noise_sampler=noise_sampler, solver_type=solver_type)

    sample_dpmpp_2m_sde_heun.noise = getattr(fn, "noise", "gaussian")  # type: ignore[attr-defined]
    return sample_dpmpp_2m_sde_heun


def _on_device(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A ``_gpu`` SDE sampler: the same solver, its Brownian tree drawn on the latent's device (ComfyUI's
    ``cpu=False``); on a CPU-only machine it gives the CPU variant's numbers."""

    @functools.wraps(fn)
    def on_device(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    on_device.noise = "brownian_device"  # type: ignore[attr-defined]
    return on_device


_DPMPP_2M_SDE_HEUN = _with_heun_solver(dpmpp_sde.sample_dpmpp_2m_sde)

SAMPLERS: dict[str, Callable[..., Any]] = {
    "euler": euler.sample_euler,
    "euler_cfg_pp": cfg_pp.sample_euler_cfg_pp,
    "euler_ancestral": euler.sample_euler_ancestral,
    "euler_ancestral_cfg_pp": cfg_pp.sample_euler_ancestral_cfg_pp,
    "heun": heun.sample_heun,
    "heunpp2": heun.sample_heunpp2,
    "dpm_2": dpm2.sample_dpm_2,
    "dpm_2_ancestral": dpm2.sample_dpm_2_ancestral,
    "lms": lms.sample_lms,
    "dpm_fast": dpm_solver.sample_dpm_fast,
    "dpm_adaptive": dpm_solver.sample_dpm_adaptive,
    "dpmpp_2s_ancestral": dpmpp.sample_dpmpp_2s_ancestral,
    "dpmpp_2s_ancestral_cfg_pp": cfg_pp.sample_dpmpp_2s_ancestral_cfg_pp,
    "dpmpp_sde": dpmpp_sde.sample_dpmpp_sde,
    "dpmpp_sde_gpu": _on_device(dpmpp_sde.sample_dpmpp_sde),
    "dpmpp_2m": dpmpp.sample_dpmpp_2m,
    "dpmpp_2m_cfg_pp": cfg_pp.sample_dpmpp_2m_cfg_pp,
    "dpmpp_2m_sde": dpmpp_sde.sample_dpmpp_2m_sde,
    "dpmpp_2m_sde_gpu": _on_device(dpmpp_sde.sample_dpmpp_2m_sde),
    "dpmpp_2m_sde_heun": _DPMPP_2M_SDE_HEUN,
    "dpmpp_2m_sde_heun_gpu": _on_device(_DPMPP_2M_SDE_HEUN),
    "dpmpp_3m_sde": dpmpp_sde.sample_dpmpp_3m_sde,
    "dpmpp_3m_sde_gpu": _on_device(dpmpp_sde.sample_dpmpp_3m_sde),
    "ddpm": ddpm.sample_ddpm,
    "lcm": lcm.sample_lcm,
    "ipndm": ipndm.sample_ipndm,
    "ipndm_v": ipndm.sample_ipndm_v,
    "deis": deis.sample_deis,
    "res_multistep": res_multistep.sample_res_multistep,
    "res_multistep_cfg_pp": cfg_pp.sample_res_multistep_cfg_pp,
    "res_multistep_ancestral": res_multistep.sample_res_multistep_ancestral,
    "res_multistep_ancestral_cfg_pp": cfg_pp.sample_res_multistep_ancestral_cfg_pp,
    "gradient_estimation": gradient_estimation.sample_gradient_estimation,
    "gradient_estimation_cfg_pp": cfg_pp.sample_gradient_estimation_cfg_pp,
    "er_sde": er_sde.sample_er_sde,
    "seeds_2": seeds.sample_seeds_2,
    "seeds_3": seeds.sample_seeds_3,
    "sa_solver": sa_solver.sample_sa_solver,
    "sa_solver_pece": sa_solver.sample_sa_solver_pece,
    "ddim": ddim.sample_ddim,
    "uni_pc": uni_pc.sample_uni_pc,
    "uni_pc_bh2": uni_pc.sample_uni_pc_bh2,
}

SCHEDULERS: dict[str, Callable[..., Any]] = {
    "simple": discrete_schedules.get_sigmas_simple,
    "sgm_uniform": discrete_schedules.get_sigmas_sgm_uniform,
    "karras": schedules.get_sigmas_karras,
    "exponential": schedules.get_sigmas_exponential,
    "ddim_uniform": discrete_schedules.get_sigmas_ddim_uniform,
    "beta": discrete_schedules.get_sigmas_beta,
    "normal": discrete_schedules.get_sigmas_normal,
    "linear_quadratic": discrete_schedules.get_sigmas_linear_quadratic,
    "kl_optimal": schedules.get_sigmas_kl_optimal,
    # Not ComfyUI core: the RES4LYF pack appends it to ComfyUI's list; templates made with that pack name it.
    "beta57": discrete_schedules.get_sigmas_beta57,
}

