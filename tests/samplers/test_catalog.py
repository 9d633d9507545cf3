"""The pack registers its samplers and schedules through hooks; node lists follow the active plugin manager."""

from __future__ import annotations

import subprocess
import sys

from hearth_samplers import installed
from hearth_samplers.catalog import SAMPLERS, SCHEDULERS

from hearth.core import plugins
from hearth.core.hookspecs import hookimpl

COMFY_SAMPLERS = ("euler euler_cfg_pp euler_ancestral euler_ancestral_cfg_pp heun heunpp2 dpm_2 dpm_2_ancestral lms "
                  "dpm_fast dpm_adaptive dpmpp_2s_ancestral dpmpp_2s_ancestral_cfg_pp dpmpp_sde dpmpp_sde_gpu dpmpp_2m dpmpp_2m_cfg_pp "
                  "dpmpp_2m_sde dpmpp_2m_sde_gpu dpmpp_2m_sde_heun dpmpp_2m_sde_heun_gpu dpmpp_3m_sde "
                  "dpmpp_3m_sde_gpu ddpm lcm ipndm ipndm_v deis res_multistep res_multistep_cfg_pp res_multistep_ancestral "
                  "res_multistep_ancestral_cfg_pp gradient_estimation gradient_estimation_cfg_pp er_sde seeds_2 seeds_3 sa_solver sa_solver_pece ddim uni_pc "
                  "uni_pc_bh2").split()
COMFY_SCHEDULERS = ("simple sgm_uniform karras exponential ddim_uniform beta normal linear_quadratic kl_optimal "
                    "beta57").split()


def test_every_comfyui_name_is_registered_through_the_hooks(hearth_plugins) -> None:
    assert list(SAMPLERS) == COMFY_SAMPLERS and list(SCHEDULERS) == COMFY_SCHEDULERS
    assert hearth_plugins.records["samplers"].error is None
    assert {k: hearth_plugins.samplers()[k] for k in COMFY_SAMPLERS} == SAMPLERS
    assert {k: hearth_plugins.schedulers()[k] for k in COMFY_SCHEDULERS} == SCHEDULERS


def test_the_runtime_plugins_are_active_and_names_follow_them(register_plugin, hearth_plugins) -> None:
    assert plugins.active_plugins() is hearth_plugins

    class Extra:
        @hookimpl
        def register_schedulers(self):
            return {"toy_linear": lambda n, sigma_min, sigma_max, device="cpu": None}

    assert "toy_linear" not in installed.scheduler_names()
    register_plugin(Extra(), "extra")
    assert "toy_linear" in installed.scheduler_names()


def test_loading_the_plugin_does_not_import_torch() -> None:
    # Plugins load at every start (comfy nodes, comfy serve); torch comes only when sampling needs it.
    code = "import sys; import hearth_samplers.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
