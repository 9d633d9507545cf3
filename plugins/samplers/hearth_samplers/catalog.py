"""This pack's catalog: its samplers and schedules by their ComfyUI names (what its ``register_*`` hooks return)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import (
    ddim,
    ddpm,
    deis,
    discrete_schedules,
    dpm2,
    dpm_solver,
    dpmpp,
    dpmpp_sde,
    euler,
    heun,
    ipndm,
    lcm,
    lms,
    schedules,
    uni_pc,
)

SAMPLERS: dict[str, Callable[..., Any]] = {
    "euler": euler.sample_euler,
    "euler_ancestral": euler.sample_euler_ancestral,
    "heun": heun.sample_heun,
    "heunpp2": heun.sample_heunpp2,
    "dpm_2": dpm2.sample_dpm_2,
    "dpm_2_ancestral": dpm2.sample_dpm_2_ancestral,
    "lms": lms.sample_lms,
    "dpm_fast": dpm_solver.sample_dpm_fast,
    "dpm_adaptive": dpm_solver.sample_dpm_adaptive,
    "dpmpp_2s_ancestral": dpmpp.sample_dpmpp_2s_ancestral,
    "dpmpp_sde": dpmpp_sde.sample_dpmpp_sde,
    "dpmpp_2m": dpmpp.sample_dpmpp_2m,
    "dpmpp_2m_sde": dpmpp_sde.sample_dpmpp_2m_sde,
    "dpmpp_3m_sde": dpmpp_sde.sample_dpmpp_3m_sde,
    "ddpm": ddpm.sample_ddpm,
    "lcm": lcm.sample_lcm,
    "ipndm": ipndm.sample_ipndm,
    "deis": deis.sample_deis,
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
}

