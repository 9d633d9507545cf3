"""ComfyUI's numerical rules, pinned with hand-computed values: what makes one workflow, checkpoint and seed give
ComfyUI's image in Hearth (issue 23). Each rule is one a user sees in a pixel comparison:

* on the CPU the step noise of a stochastic sampler comes from a generator seeded with the sampling seed plus one,
  as in ComfyUI since its PR #11528 (issue #9819); before that (0.3.64) it was the seed itself, so the first step
  re-added the initial noise. The noise of step k is the k-th ``torch.randn`` of that generator;
* a discrete model's UNet gets the integer timestep nearest in log sigma, never an interpolated one;
* below denoise 1, the sigmas are the last ``steps + 1`` of an ``int(steps / denoise)``-step schedule;
* a LATENT's ``batch_index`` picks items of the noise drawn item by item up to the largest index.
"""

from __future__ import annotations

import math

import pytest
import torch
from hearth_samplers.catalog import SAMPLERS
from hearth_samplers.model_sampling import (
    ContinuousEDMSampling,
    ContinuousVSampling,
    DiscreteSampling,
    FlowSampling,
    FluxSampling,
)
from hearth_samplers.noise import DisabledNoise, RandomNoise, prepare_noise
from hearth_samplers.sampling import Guider, Sampler, _noise_sampler, common_ksampler, ksampler_sigmas

from .toy_model import ToyModel, text

SHAPE = (1, 4, 8, 8)


def randn(seed: int, draws: int, shape=SHAPE) -> list[torch.Tensor]:
    """The first ``draws`` tensors of torch.randn from a CPU generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for _ in range(draws)]


# -- step noise ------------------------------------------------------------------------------------------------------

GAUSSIAN_SAMPLERS = ["euler_ancestral", "euler_ancestral_cfg_pp", "dpm_2_ancestral", "dpmpp_2s_ancestral",
                     "dpmpp_2s_ancestral_cfg_pp", "res_multistep_ancestral", "ddpm", "lcm", "er_sde", "seeds_2",
                     "seeds_3", "sa_solver", "sa_solver_pece", "dpm_fast", "dpm_adaptive"]


@pytest.mark.parametrize("name", GAUSSIAN_SAMPLERS)
def test_step_noise_on_the_cpu_is_the_randn_sequence_of_seed_plus_one(name: str) -> None:
    sampler = _noise_sampler(Sampler(SAMPLERS[name], name), torch.zeros(SHAPE), torch.tensor([14.6, 3.0, 0.0]), 42)
    first, second = randn(43, 2)
    assert torch.equal(sampler(14.6, 3.0), first)
    assert torch.equal(sampler(3.0, 0.5), second)


def test_the_first_step_noise_of_seed_0_on_the_cpu_is_torch_randn_seeded_1() -> None:
    sampler = _noise_sampler(Sampler(SAMPLERS["euler_ancestral"], "euler_ancestral"), torch.zeros(1, 1, 1, 3),
                             torch.tensor([14.6, 3.0, 0.0]), 0)
    # torch.randn(3) from torch.Generator().manual_seed(1): the values a seed-0 ComfyUI run adds at step 1 on a CPU.
    # (manual_seed(0) gives 1.5410, -0.2934, -2.1788: the initial noise, which ComfyUI 0.3.64 added a second time.)
    assert torch.allclose(sampler(14.6, 3.0).flatten(), torch.tensor([0.6614, 0.2669, 0.0617]), atol=1e-4)
    largest = _noise_sampler(Sampler(SAMPLERS["euler_ancestral"], "euler_ancestral"), torch.zeros(1, 1, 1, 3),
                             torch.tensor([14.6, 3.0, 0.0]), 2**64 - 1)
    assert torch.equal(largest(14.6, 3.0), randn(0, 1, (1, 1, 1, 3))[0])  # the largest seed wraps to 0


def test_ksampler_euler_ancestral_step_adds_fresh_noise_on_the_cpu() -> None:
    # One ancestral step with a model that always answers 0.75 (scaled latent), from an empty latent at full
    # denoise, worked by hand: x0 = noise * sqrt(1 + s0^2); x1 = d + (x0 - d) * s_down / s0 + noise_1 * s_up,
    # where noise is the first randn of the seed and noise_1 the first of seed + 1: not the same noise twice.
    model = ToyModel(constant=True)
    seed, steps = 5, 3
    out = common_ksampler(model, seed, steps, 1.0, "euler_ancestral", "karras", [[text(0.75), {}]], None,
                          {"samples": torch.zeros(SHAPE)}, last_step=1)["samples"]
    sigmas = ksampler_sigmas(model.sampling, "karras", "euler_ancestral", steps).tolist()
    s0, s1 = sigmas[0], sigmas[1]
    s_up = min(s1, (s1**2 * (s0**2 - s1**2) / s0**2) ** 0.5)
    s_down = (s1**2 - s_up**2) ** 0.5
    (noise,), (noise_1,) = randn(seed, 1), randn(seed + 1, 1)
    x0 = noise * math.sqrt(1 + s0**2)
    x1 = 0.75 + (x0 - 0.75) * (s_down / s0) + noise_1 * s_up
    assert torch.allclose(out, x1 / 0.5, atol=1e-4)  # process_latent_out halves the toy's scale


def test_sampler_custom_takes_the_step_noise_from_noise_seed_even_without_added_noise() -> None:
    from hearth_samplers.nodes_custom_sampling import SamplerCustom, SamplerCustomAdvanced

    seen: list[int | None] = []

    class Spy(Guider):
        def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
                   disable_pbar=False, seed=None):
            seen.append(seed)
            return latent_image

    latent = {"samples": torch.zeros(SHAPE)}
    import hearth_samplers.sampling as sampling

    original = sampling.Guider
    sampling.Guider = Spy
    try:
        SamplerCustom().sample(ToyModel(), False, 77, 1.0, [], [], None, torch.tensor([1.0, 0.0]), latent)
        SamplerCustom().sample(ToyModel(), True, 78, 1.0, [], [], None, torch.tensor([1.0, 0.0]), latent)
    finally:
        sampling.Guider = original
    SamplerCustomAdvanced().sample(DisabledNoise(), Spy(ToyModel(), []), None, torch.tensor([1.0, 0.0]), latent)
    SamplerCustomAdvanced().sample(RandomNoise(79), Spy(ToyModel(), []), None, torch.tensor([1.0, 0.0]), latent)
    assert seen == [77, 78, 0, 79]  # DisableNoise's seed is 0, as ComfyUI's Noise_EmptyNoise


# -- sigma to timestep ------------------------------------------------------------------------------------------------

def _sd_sampling(prediction: str = "eps"):
    from hearth_sd.sampling import ModelSampling

    return ModelSampling(prediction=prediction)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_an_sd_model_gets_the_nearest_whole_timestep(prediction: str) -> None:
    sampling = _sd_sampling(prediction)
    # By hand (float64 betas, sigma = sqrt((1 - abar) / abar)): log 1.0 is nearest training step 354's log sigma
    # (0.00037 away, the next 0.0030), log 2.0 step 562's, log 0.5 step 169's; the ends are 0 and 999.
    sigmas = torch.tensor([1.0, 2.0, 0.5, float(sampling.sigmas[-1]), float(sampling.sigmas[0])])
    assert sampling.timestep(sigmas).tolist() == [354.0, 562.0, 169.0, 999.0, 0.0]
    # A sigma 70% of the way (in log) from step 500 to 501 is fed as 501, not 500.7.
    between = torch.lerp(sampling.log_sigmas[500], sampling.log_sigmas[501], 0.7).exp()
    assert sampling.timestep(between.reshape(1)).tolist() == [501.0]


def test_every_discrete_sampling_follows_the_same_rule() -> None:
    sd = _sd_sampling()
    between = torch.lerp(sd.log_sigmas[500], sd.log_sigmas[501], 0.3).exp().reshape(1)
    assert DiscreteSampling("eps").timestep(between).tolist() == [500]
    assert DiscreteSampling("v").timestep(torch.tensor([1.0])).tolist() == [354]
    # LCM's 50-step table: every 20th step, fed as index * 20 + 19.
    lcm = DiscreteSampling("lcm")
    assert lcm.timestep(lcm.sigmas[[0, 49]]).tolist() == [19, 999]


def test_continuous_and_flow_timesteps() -> None:
    # EDM: log(sigma) / 4; continuous V: atan(sigma) * 2 / pi; SD3/Wan flow: sigma * 1000; Flux: sigma.
    assert math.isclose(float(ContinuousEDMSampling("edm", 0.002, 120.0).timestep(torch.tensor(math.e**2))), 0.5,
                        rel_tol=1e-6)
    assert math.isclose(float(ContinuousVSampling("v", 0.002, 120.0).timestep(torch.tensor(1.0))), 0.5, rel_tol=1e-6)
    assert float(FlowSampling(shift=3.0).timestep(torch.tensor(0.25))) == 250.0
    assert float(FluxSampling().timestep(torch.tensor(0.25))) == 0.25


def test_wan_flow_table_is_computed_in_float32_as_comfyui_does() -> None:
    wan_sampling = pytest.importorskip("hearth_video.wan_sampling")
    table = wan_sampling.FlowSampling(shift=8.0).sigmas
    t = torch.arange(1, 1001, 1) / 1000 * 1000.0 / 1000.0  # float32 all the way, ComfyUI's order
    assert table.dtype == torch.float32 and torch.equal(table, 8.0 * t / (1 + 7.0 * t))


# -- denoise < 1 and batch_index ------------------------------------------------------------------------------------

def test_denoise_half_takes_the_last_steps_of_twice_as_many() -> None:
    from hearth_samplers.nodes_sigmas import BasicScheduler

    model = ToyModel()
    sigma_min, sigma_max = model.sampling.sigma_min, model.sampling.sigma_max
    # karras over 8 steps by hand: (max^(1/7) + i/7 * (min^(1/7) - max^(1/7)))^7; denoise 0.5 of 4 steps keeps the
    # last 5 of them (the final 0 included).
    lo, hi = sigma_min ** (1 / 7), sigma_max ** (1 / 7)
    full = [(hi + i / 7 * (lo - hi)) ** 7 for i in range(8)] + [0.0]
    expected = torch.tensor(full[-5:])
    assert torch.allclose(ksampler_sigmas(model.sampling, "karras", "euler", 4, denoise=0.5), expected, rtol=1e-5)
    (basic,) = BasicScheduler().get_sigmas(model, "karras", 4, 0.5)
    assert torch.allclose(basic, expected, rtol=1e-5)
    # int(steps / denoise), not round: 3 steps at 0.7 come from a 4-step schedule (3 / 0.7 = 4.29).
    four = ksampler_sigmas(model.sampling, "karras", "euler", 4)
    assert torch.equal(ksampler_sigmas(model.sampling, "karras", "euler", 3, denoise=0.7), four[-4:])


def test_batch_index_noise_picks_items_of_the_per_item_draws() -> None:
    # batch_index [2, 3]: four items drawn one after another from the seed, the last two kept.
    drawn = randn(9, 4, (1, 4, 8, 8))
    noise = prepare_noise(torch.zeros(2, 4, 8, 8), 9, batch_index=[2, 3])
    assert torch.equal(noise, torch.cat(drawn[2:4]))
    # A repeated index repeats the item, as ComfyUI's np.unique / inverse does.
    assert torch.equal(prepare_noise(torch.zeros(2, 4, 8, 8), 9, batch_index=[1, 1]), torch.cat([drawn[1]] * 2))
    assert torch.equal(prepare_noise(torch.zeros(1, 4, 8, 8), 9), drawn[0])


def test_ddim_renoises_the_kept_area_of_an_inpainting_with_seed_plus_one() -> None:
    # ComfyUI's ddim is euler whose inpainting re-noises the area kept from the latent with randn(seed + 1); every
    # other sampler re-noises it with the initial noise.
    def one_step(model, x, sigmas, *, extra_args=None, callback=None, disable=None, noise_sampler=None):
        return model(x, sigmas[0] * x.new_ones([x.shape[0]]))

    seen = {}
    for name, random in (("ddim", True), ("euler", False)):
        one_step.inpaint_random = random
        model = ToyModel(constant=True)
        mask = torch.zeros(1, 8, 8)  # keep everything: the model sees the noised latent
        Guider(model, [[text(0.0), {}]]).sample(torch.zeros(SHAPE), torch.zeros(SHAPE), Sampler(one_step, name),
                                                torch.tensor([2.0, 0.0]), denoise_mask=mask, seed=12)
        seen[name] = model.calls[0]["x"]
    (fresh,) = randn(13, 1)
    assert torch.allclose(seen["ddim"], fresh * 2.0)
    assert torch.equal(seen["euler"], torch.zeros(SHAPE))  # the initial noise here is zeros


# -- float32 arithmetic of the common samplers ---------------------------------------------------------------------

def _toy(x: torch.Tensor, sigma: torch.Tensor, **_) -> torch.Tensor:
    return torch.tanh(x / (1 + sigma.reshape(-1, 1, 1, 1))) * 0.5


def test_common_steps_round_as_comfyuis_do() -> None:
    # One step of each, by hand in float32 0-d tensors in ComfyUI's order of operations: the results must be equal
    # to the bit (a fused lerp with a Python-float ratio differs in the last bit, which flips the odd 8-bit pixel).
    sigmas = torch.tensor([7.5, 2.25, 0.5])
    x = randn(3, 1)[0] * 7.5
    d = (x - _toy(x, sigmas[:1])) / sigmas[0]
    assert torch.equal(SAMPLERS["euler"](_toy, x, sigmas[:2]), x + d * (sigmas[1] - sigmas[0]))
    noise = randn(4, 1)[0]
    up = torch.minimum(sigmas[1], (sigmas[1] ** 2 * (sigmas[0] ** 2 - sigmas[1] ** 2) / sigmas[0] ** 2) ** 0.5)
    down = (sigmas[1] ** 2 - up**2) ** 0.5
    out = SAMPLERS["euler_ancestral"](_toy, x, sigmas[:2], noise_sampler=lambda s, t: noise)
    assert torch.equal(out, x + d * (down - sigmas[0]) + noise * 1.0 * up)
    t, t_next = sigmas[0].log().neg(), sigmas[1].log().neg()
    h = t_next - t
    expected = (t_next.neg().exp() / t.neg().exp()) * x - (-h).expm1() * _toy(x, sigmas[:1])
    assert torch.equal(SAMPLERS["dpmpp_2m"](_toy, x, sigmas[:2]), expected)


# -- one-step UniPC, and flow-model forms ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["uni_pc", "uni_pc_bh2"])
def test_unipc_at_one_step_leaves_the_latent_where_comfyui_does(name: str) -> None:
    """ComfyUI's UniPC at one step has order 0: one model call, and the start latent comes back rescaled from the
    variance-preserving form, ``x / sqrt(1 + s0**2) * sqrt(1 + 0.001**2)`` (it stops at sigma 0.001)."""
    x = torch.tensor([[2.0, -4.0, 8.0]])
    calls = []

    def model(latent, sigma, **_):
        calls.append(float(sigma[0]))
        return torch.zeros_like(latent)

    out = SAMPLERS[name](model, x, torch.tensor([3.0, 0.0]), extra_args={})
    assert calls == [3.0]
    scale = math.sqrt(1 + 0.001**2) / math.sqrt(1 + 3.0**2)
    assert torch.allclose(out, x * scale, rtol=1e-6, atol=0)
    assert not torch.allclose(out, torch.zeros_like(out), atol=0.1)  # not the clean estimate a real step would give


def test_dpmpp_2s_ancestral_from_pure_flow_noise_takes_comfyuis_midpoint_0_9999() -> None:
    """On a flow model, from sigma 1 (half-log-SNR minus infinity) ComfyUI's DPM++ 2S ancestral evaluates its second
    stage at sigma 0.9999, written out; from elsewhere at the midpoint in log((1 - sigma) / sigma)."""
    seen = []

    class Flow:
        prediction, sigma_max, sigma_min = "flow", 1.0, 0.001

    class Model:
        sampling = Flow()

        def __call__(self, latent, sigma, **_):
            seen.append(round(float(sigma[0]), 6))
            return torch.zeros_like(latent)

    x = torch.ones(1, 2)
    SAMPLERS["dpmpp_2s_ancestral"](Model(), x, torch.tensor([1.0, 0.5, 0.0]), extra_args={},
                                   noise_sampler=lambda s, t: torch.zeros_like(x))
    # Step 1: sigma_down = 0.5 * (1 + (0.5 - 1)) = 0.25; step 2 ends at 0 (an Euler step, one call).
    assert seen == [1.0, 0.9999, 0.5]
    seen.clear()
    SAMPLERS["dpmpp_2s_ancestral"](Model(), x, torch.tensor([0.8, 0.5]), extra_args={},
                                   noise_sampler=lambda s, t: torch.zeros_like(x))
    down = 0.5 * (1 + (0.5 / 0.8 - 1))  # 0.3125
    lam, lam_down = math.log(0.2 / 0.8), math.log((1 - down) / down)
    assert seen == [0.8, pytest.approx(1 / (math.exp((lam + lam_down) / 2) + 1), abs=1e-6)]
