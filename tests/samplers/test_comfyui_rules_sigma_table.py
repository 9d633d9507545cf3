"""The discrete sigma table's logs are ComfyUI's: the log of the float64 table, then rounded (its set_sigmas); and
lms's weights are its float32 quadrature.

Taking the log of the already-rounded float32 sigmas is one bit off at some steps (199 and 200 among them), and
every sigma interpolated between table steps moves with it: KSampler at denoise 0.6 with the "normal" schedule
(a 6-step schedule whose timesteps are not whole) then ended 1e-4 away from ComfyUI's latent (issue 23). The
expected values below are ComfyUI 0.3.64's, printed as float hex.
"""

from __future__ import annotations

import torch
from hearth_samplers.discrete_schedules import get_sigmas_normal
from hearth_samplers.model_sampling import DiscreteSampling
from hearth_sd.sampling import ModelSampling

# ComfyUI's normal_scheduler(ModelSamplingDiscrete, 6) for the SD schedule (0.00085..0.012, scaled linear).
COMFYUI_NORMAL_6 = ["0x1.d3ab22p+3", "0x1.45ea04p+2", "0x1.23ce36p+1", "0x1.29b17ep+0", "0x1.2472dep-1",
                    "0x1.dddff0p-6", "0x0.0p+0"]


def float64_table() -> torch.Tensor:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    cumprod = torch.cumprod(1.0 - betas, dim=0)
    return ((1 - cumprod) / cumprod).sqrt()


def test_both_discrete_samplings_round_the_float64_logs() -> None:
    table = float64_table()
    for sampling in (ModelSampling(prediction="eps"), DiscreteSampling("eps")):
        assert torch.equal(sampling.sigmas, table.float())
        assert torch.equal(sampling.log_sigmas, table.log().float())
    # The rule matters: the log of the rounded sigmas differs in the last bit at step 199.
    assert table.float().log()[199] != table.log().float()[199]


def test_the_normal_schedule_between_table_steps_is_comfyuis() -> None:
    for sampling in (ModelSampling(prediction="eps"), DiscreteSampling("eps")):
        assert get_sigmas_normal(sampling, 6).tolist() == [float.fromhex(h) for h in COMFYUI_NORMAL_6]


def test_lcm_takes_the_log_of_its_rounded_50_step_table() -> None:
    lcm = DiscreteSampling("lcm")
    # ComfyUI fills a float32 table with the 50 distilled steps before taking logs (0.3.64's values).
    assert lcm.log_sigmas[[0, 10, 20, 49]].tolist() == [-2.0065579414367676, -0.48192059993743896,
                                                         0.21444638073444366, 2.682023763656616]
    assert torch.equal(lcm.log_sigmas, lcm.sigmas.log())


def test_lms_weights_are_comfyuis_float32_quadrature() -> None:
    """ComfyUI's lms integrates the Lagrange basis evaluated on its float32 sigmas with scipy's quad; the weights
    here are those to the bit (an exact float64 integral differs in the last bits, the latent by 7e-5 at 4 steps)."""
    import numpy as np
    from hearth_samplers.lms import adams_coefficients
    from hearth_samplers.schedules import get_sigmas_karras
    from scipy import integrate

    def comfyui_weight(t: np.ndarray, i: int, order: int, j: int) -> float:
        def basis(tau: float):  # numpy float32 arithmetic, as on ComfyUI's sigmas.numpy()
            value = 1.0
            for k in range(order):
                if k != j:
                    value *= (tau - t[i - k]) / (t[i - j] - t[i - k])
            return value
        return integrate.quad(basis, t[i], t[i + 1], epsrel=1e-4)[0]

    exact_differs = False
    for sigmas in (get_sigmas_normal(ModelSampling(prediction="eps"), 10), get_sigmas_karras(20, 0.0292, 14.6146)):
        t = sigmas.numpy()
        for i in range(len(t) - 2):
            order = min(i + 1, 4)
            got = adams_coefficients(sigmas.tolist(), i, order)
            assert got == [comfyui_weight(t, i, order, j) for j in range(order)]
            exact_differs |= got != [comfyui_weight(t.astype(np.float64), i, order, j) for j in range(order)]
    assert exact_differs  # the float32 evaluation is the rule, not a detail
