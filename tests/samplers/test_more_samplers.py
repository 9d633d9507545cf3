"""res_multistep, gradient_estimation, er_sde, the *_gpu / heun aliases and beta57: against independent float64
versions of their updates, and properties the maths guarantees."""

from __future__ import annotations

import math

import pytest
import torch
from hearth_samplers.catalog import SAMPLERS, SCHEDULERS
from hearth_samplers.discrete_schedules import get_sigmas_beta
from hearth_samplers.er_sde import sample_er_sde
from hearth_samplers.gradient_estimation import sample_gradient_estimation
from hearth_samplers.model_sampling import FlowSampling
from hearth_samplers.nodes_samplers import SamplerER_SDE, SamplerSEEDS2
from hearth_samplers.res_multistep import sample_res_multistep, sample_res_multistep_ancestral

from .toy_model import ToySampling

SIGMAS = torch.tensor([10.0, 4.0, 1.5, 0.6, 0.2, 0.0])


def _denoise(x, sigma):
    return math.tanh(x) * 0.5 + 0.1 * sigma


class Denoiser:
    """``model(x, sigma) -> denoised`` on a one-element latent, with a model sampling for the samplers to find."""

    def __init__(self, sampling=None) -> None:
        self.sampling = sampling or ToySampling()

    def __call__(self, x, sigma, **_):
        return torch.tensor([[[[_denoise(float(x), float(sigma[0]))]]]], dtype=x.dtype)


def _x() -> torch.Tensor:
    return torch.full((1, 1, 1, 1), 7.0)


def test_res_multistep_against_the_exponential_integrator() -> None:
    got = float(sample_res_multistep(Denoiser(), _x(), SIGMAS))
    s = [float(v) for v in SIGMAS]
    x, old = 7.0, None
    for i in range(len(s) - 1):
        d = _denoise(x, s[i])
        if s[i + 1] == 0 or old is None:
            x = x + (x - d) / s[i] * (s[i + 1] - s[i])
        else:
            h = math.log(s[i]) - math.log(s[i + 1])
            c2 = (math.log(s[i]) - math.log(s[i - 1])) / h  # t_prev - t_old, with t = -log(sigma)
            phi1 = math.expm1(-h) / -h
            phi2 = (phi1 - 1) / -h
            x = math.exp(-h) * x + h * ((phi1 - phi2 / c2) * d + (phi2 / c2) * old)
        old = d
    assert got == pytest.approx(x, rel=1e-5)


def test_res_multistep_ancestral_without_eta_is_res_multistep() -> None:
    plain = sample_res_multistep(Denoiser(), _x(), SIGMAS)
    assert torch.allclose(sample_res_multistep_ancestral(Denoiser(), _x(), SIGMAS, eta=0.0), plain)
    noisy = sample_res_multistep_ancestral(Denoiser(), _x(), SIGMAS, eta=1.0,
                                           noise_sampler=lambda a, b: torch.ones(1, 1, 1, 1))
    assert not torch.allclose(noisy, plain)


def test_gradient_estimation_corrects_euler_by_the_change_in_direction() -> None:
    got = float(sample_gradient_estimation(Denoiser(), _x(), SIGMAS, ge_gamma=2.5))
    s = [float(v) for v in SIGMAS]
    x, old_d = 7.0, None
    for i in range(len(s) - 1):
        den = _denoise(x, s[i])
        d = (x - den) / s[i]
        if s[i + 1] == 0:
            x = den
        else:
            x = x + d * (s[i + 1] - s[i])
            if i >= 1:
                x = x + 1.5 * (d - old_d) * (s[i + 1] - s[i])
        old_d = d
    assert got == pytest.approx(x, rel=1e-5)


def _euler(model, sigmas):
    x = _x()
    for i in range(len(sigmas) - 1):
        d = model(x, sigmas[i : i + 1])
        x = x + (x - d) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def test_er_sde_with_the_ode_scaler_and_one_stage_is_euler() -> None:
    (sampler,) = SamplerER_SDE().get_sampler("ODE", 1, 1.0, 1.0)
    assert sampler.options["s_noise"] == 0.0
    got = sampler.sample(Denoiser(), _x(), SIGMAS)
    assert torch.allclose(got, _euler(Denoiser(), SIGMAS), atol=1e-5)
    flow = Denoiser(FlowSampling(shift=3.0))
    flow_sigmas = torch.tensor([0.9, 0.7, 0.4, 0.1, 0.0])
    assert torch.allclose(sampler.sample(flow, _x(), flow_sigmas), _euler(flow, flow_sigmas), atol=1e-5)


def test_er_sde_higher_stages_follow_the_ode_more_closely() -> None:
    fine = torch.exp(torch.linspace(math.log(10.0), math.log(0.2), 400))
    reference = float(_euler(Denoiser(), torch.cat([fine, torch.zeros(1)])[:-1]))

    def ode(stages):
        return float(sample_er_sde(Denoiser(), _x(), SIGMAS[:-1], s_noise=0.0, noise_scaler=lambda lam: lam,
                                   max_stage=stages))

    errors = [abs(ode(stages) - reference) for stages in (1, 2, 3)]
    assert errors[2] < errors[0] and errors[1] < errors[0]


def test_er_sde_noise_and_solver_choices() -> None:
    quiet = sample_er_sde(Denoiser(), _x(), SIGMAS, s_noise=0.0)
    noisy = sample_er_sde(Denoiser(), _x(), SIGMAS, s_noise=1.0, noise_sampler=lambda a, b: torch.ones(1, 1, 1, 1))
    assert not torch.allclose(quiet, noisy)
    (reverse,) = SamplerER_SDE().get_sampler("Reverse-time SDE", 3, 0.5, 1.0)
    lam = torch.tensor(2.0)
    assert float(reverse.options["noise_scaler"](lam)) == pytest.approx(2.0**1.5)
    (er,) = SamplerER_SDE().get_sampler("ER-SDE", 2, 0.5, 0.7)
    assert float(er.options["noise_scaler"](lam)) == pytest.approx(2.0 * (math.exp(2.0**0.3) + 10.0) ** 0.5)
    assert er.options["s_noise"] == 0.7 and er.options["max_stage"] == 2
    (off,) = SamplerER_SDE().get_sampler("ER-SDE", 3, 0.0, 1.0)  # eta 0 is the ODE
    assert off.options["s_noise"] == 0.0 and float(off.options["noise_scaler"](lam)) == 2.0


def test_gpu_and_heun_aliases_and_beta57() -> None:
    for name in ("dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde", "dpmpp_2m_sde_heun"):
        # The same solver; only where its Brownian tree draws differs (ComfyUI's cpu=False).
        gpu = SAMPLERS[f"{name}_gpu"]
        assert gpu.__wrapped__ is SAMPLERS[name] and gpu.noise == "brownian_device"
    heun = SAMPLERS["dpmpp_2m_sde_heun"]
    assert getattr(heun, "noise", None) == getattr(SAMPLERS["dpmpp_2m_sde"], "noise", None)
    noise = lambda a, b: torch.zeros(1, 1, 1, 1)  # noqa: E731
    expected = SAMPLERS["dpmpp_2m_sde"](Denoiser(), _x(), SIGMAS, solver_type="heun", noise_sampler=noise)
    assert torch.allclose(heun(Denoiser(), _x(), SIGMAS, noise_sampler=noise), expected)
    sampling = ToySampling()
    assert torch.equal(SCHEDULERS["beta57"](sampling, 10), get_sigmas_beta(sampling, 10, alpha=0.5, beta=0.7))


def _seeds_reference(solver_type: str, eta: float, r: float) -> float:
    """SEEDS-2 on the scalar test latent in plain floats (k-diffusion latents: lambda = -log sigma, alpha = 1),
    with unit noise."""
    s = [float(v) for v in SIGMAS]
    x = 7.0
    for i in range(len(s) - 1):
        d = _denoise(x, s[i])
        if s[i + 1] == 0:
            x = d
            continue
        h = math.log(s[i]) - math.log(s[i + 1])
        h_eta = h * (eta + 1)
        sigma_mid = math.exp(-(-math.log(s[i]) + r * h))
        x2 = sigma_mid / s[i] * math.exp(-r * h * eta) * x - math.expm1(-r * h_eta) * d
        noise = math.sqrt(-math.expm1(-2 * r * h * eta))
        x2 += noise * sigma_mid
        d2 = _denoise(x2, sigma_mid)
        if solver_type == "phi_1":
            mixed = d + (d2 - d) / (2 * r)
            x = s[i + 1] / s[i] * math.exp(-h * eta) * x - math.expm1(-h_eta) * mixed
        else:
            b2 = (math.expm1(-h_eta) + h_eta) / -h_eta / r
            b1 = math.expm1(-h_eta) - b2
            x = s[i + 1] / s[i] * math.exp(-h * eta) * x - (b1 * d + b2 * d2)
        segment = (r - 1) * h * eta
        noise = noise * math.exp(segment) + math.sqrt(-math.expm1(2 * segment))
        x += noise * s[i + 1]
    return x


@pytest.mark.parametrize(("solver_type", "eta", "r"), [("phi_1", 1.0, 0.5), ("phi_2", 0.0, 1.0), ("phi_2", 0.5, 0.3)])
def test_seeds_2_against_its_exponential_integrator(solver_type: str, eta: float, r: float) -> None:
    (sampler,) = SamplerSEEDS2().get_sampler(solver_type, eta, 1.0, r)
    got = sampler.sample(Denoiser(), _x().double(), SIGMAS.double(),
                         noise_sampler=lambda a, b: torch.ones(1, 1, 1, 1, dtype=torch.float64))
    assert float(got) == pytest.approx(_seeds_reference(solver_type, eta, r), rel=1e-6)
    with pytest.raises(ValueError, match="SamplerSEEDS2: r must be in"):
        SamplerSEEDS2().get_sampler(solver_type, eta, 1.0, 0.0)


def test_seeds_3_is_third_order_on_the_ode() -> None:
    """Without noise, SEEDS-3 follows the ODE much more closely than SEEDS-2 over the same steps."""
    fine = torch.exp(torch.linspace(math.log(10.0), math.log(0.2), 400)).double()
    reference = float(_euler(Denoiser(), fine))
    from hearth_samplers.seeds import sample_seeds_2, sample_seeds_3

    coarse = SIGMAS[:-1].double()
    third = float(sample_seeds_3(Denoiser(), _x().double(), coarse, eta=0.0))
    second = float(sample_seeds_2(Denoiser(), _x().double(), coarse, eta=0.0))
    assert abs(third - reference) < abs(second - reference)
    noisy = sample_seeds_3(Denoiser(), _x().double(), SIGMAS.double(), eta=1.0,
                           noise_sampler=lambda a, b: torch.ones(1, 1, 1, 1, dtype=torch.float64))
    assert float(noisy) != pytest.approx(float(sample_seeds_3(Denoiser(), _x().double(), SIGMAS.double(), eta=0.0)))


def test_sa_solver_exponential_coefficients_integrate_the_kernel() -> None:
    from hearth_samplers.sa_solver import exponential_coefficients

    s, t, tau = torch.tensor(-1.2, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64), 0.6
    scale = 1 + tau**2
    grid = torch.linspace(-1.2, 0.7, 20001, dtype=torch.float64)
    got = exponential_coefficients(s, t, 4, tau)
    for p in range(4):
        integral = torch.trapezoid(torch.exp(scale * grid) * grid**p, grid)
        assert float(got[p]) == pytest.approx(float(scale * integral * math.exp(-scale * 0.7)), rel=1e-6)


def test_sa_solver_weights_reproduce_a_constant_and_order_one_is_euler() -> None:
    from hearth_samplers.sa_solver import adams_coefficients, sample_sa_solver

    lambdas = torch.tensor([-2.0, -1.3, -0.9], dtype=torch.float64)
    sigma_next, lam_s, lam_t = torch.tensor(0.5, dtype=torch.float64), lambdas[-1], torch.tensor(-0.4, dtype=torch.float64)
    for tau in (0.0, 0.8):
        weights = adams_coefficients(sigma_next, lambdas, lam_s, lam_t, tau)
        alpha_t = 0.5 * math.exp(-0.4)
        assert float(weights.sum()) == pytest.approx(alpha_t * -math.expm1(-(1 + tau**2) * 0.5), rel=1e-9)
    ode = sample_sa_solver(Denoiser(), _x().double(), SIGMAS.double(), tau_func=lambda sigma: 0.0,
                           predictor_order=1, corrector_order=0)
    assert torch.allclose(ode, _euler(Denoiser(), SIGMAS).double(), atol=1e-5)


def test_sa_solver_higher_orders_follow_the_ode_more_closely() -> None:
    from hearth_samplers.sa_solver import sample_sa_solver

    fine = torch.exp(torch.linspace(math.log(10.0), math.log(0.2), 2000)).double()
    reference = float(_euler(Denoiser(), fine))
    steps = torch.exp(torch.linspace(math.log(10.0), math.log(0.2), 8)).double()

    def ode(order, pece=False):
        return float(sample_sa_solver(Denoiser(), _x().double(), steps, tau_func=lambda sigma: 0.0,
                                      predictor_order=order, corrector_order=order, use_pece=pece))

    assert abs(ode(3) - reference) < abs(ode(1) - reference)
    assert ode(3, pece=True) != pytest.approx(ode(3))


def test_sampler_sa_solver_node_sets_the_sde_interval_from_the_model() -> None:
    from hearth_samplers.nodes_samplers import SamplerSASolver

    from .toy_model import ToyModel

    model = ToyModel()
    (sampler,) = SamplerSASolver().get_sampler(model, 0.7, 0.2, 0.8, 1.0, 3, 4, True, False)
    assert sampler.name == "sa_solver" and sampler.options["use_pece"] is True
    tau = sampler.options["tau_func"]
    inside = model.sampling.percent_to_sigma(0.5)
    assert tau(inside) == 0.7 and tau(model.sampling.percent_to_sigma(0.9)) == 0.0 and tau(100.0) == 0.0
    (ode,) = SamplerSASolver().get_sampler(model, 0.0, 0.2, 0.8, 1.0, 3, 4, False, False)
    assert ode.options["tau_func"](inside) == 0.0


def test_ipndm_v_weights_are_comfyuis() -> None:
    """Order 2 is the exact variable-step Adams-Bashforth rule; orders 3 and 4 follow the reference expressions
    ComfyUI uses (diff-solvers'), which reduce to Adams-Bashforth 3 on equal steps but are their own rule on uneven
    ones."""
    import numpy as np
    from hearth_samplers.ipndm import _variable_weights

    h = [-0.7, -1.3, -2.1, -3.4]
    nodes = np.array([0.0, 1.3])  # the current sigma and the previous one, relative to the current
    exact = [((np.poly1d(np.poly([nodes[1 - j]])) / (nodes[j] - nodes[1 - j])).integ()(h[0])) / h[0] for j in (0, 1)]
    assert np.allclose(_variable_weights(2, h[:2]), exact, rtol=1e-12)
    t1 = (1 - (0.7 / 6) * (1.4 / 4.42)) / 2  # worked by hand from the expressions
    assert _variable_weights(3, h[:3]) == pytest.approx((1 + 0.7 / 2.6 + t1, -0.7 / 2.6 - (1 + 1.3 / 2.1) * t1,
                                                         t1 * 1.3 / 2.1))
    assert _variable_weights(3, [-1.0] * 3) == pytest.approx((23 / 12, -16 / 12, 5 / 12))
    # Order 4 on equal steps, by hand from the expressions: not Adams-Bashforth 4's 55/24, -59/24, 37/24, -9/24.
    assert _variable_weights(4, [-1.0] * 4) == pytest.approx((57 / 24, -65 / 24, 43 / 24, -11 / 24))


def test_ipndm_v_on_equal_steps_is_ipndm_up_to_order_3() -> None:
    even = torch.tensor([10.0, 8.0, 6.0, 4.0, 2.0, 0.0], dtype=torch.float64)
    assert torch.allclose(SAMPLERS["ipndm_v"](Denoiser(), _x().double(), even, max_order=3),
                          SAMPLERS["ipndm"](Denoiser(), _x().double(), even, max_order=3))
    assert not torch.allclose(SAMPLERS["ipndm_v"](Denoiser(), _x(), SIGMAS), SAMPLERS["ipndm"](Denoiser(), _x(), SIGMAS))
