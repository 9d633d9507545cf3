"""CFG++ samplers: equal to their base sampler when positive and negative agree, and the negative's direction
(evaluated even at cfg 1) otherwise."""

from __future__ import annotations

import pytest
import torch
from hearth_samplers.catalog import SAMPLERS
from hearth_samplers.nodes_samplers import SamplerEulerAncestralCFGPP
from hearth_samplers.noise import prepare_noise
from hearth_samplers.sampling import Guider, Sampler

from .toy_model import ToyModel, text

SIGMAS = torch.tensor([14.6, 6.0, 2.5, 1.0, 0.3, 0.0])
# Not dpmpp_2s_ancestral_cfg_pp: ComfyUI's (and so Hearth's) shifts its second stage by the first estimate minus the
# negative of the midpoint's call, which differ even when positive and negative agree (see the test below).
PAIRS = [("euler_cfg_pp", "euler"), ("euler_ancestral_cfg_pp", "euler_ancestral"), ("dpmpp_2m_cfg_pp", "dpmpp_2m"),
         ("res_multistep_cfg_pp", "res_multistep"), ("res_multistep_ancestral_cfg_pp", "res_multistep_ancestral"),
         ("gradient_estimation_cfg_pp", "gradient_estimation")]


def _sample(name, model, negative_value, cfg=3.0):
    latent = torch.zeros(1, 4, 8, 8)
    guider = Guider(model, [[text(1.0), {}]], [[text(negative_value), {}]], cfg)
    return guider.sample(prepare_noise(latent, 9), latent, Sampler(SAMPLERS[name], name), SIGMAS, seed=9)


@pytest.mark.parametrize(("cfg_pp", "base"), PAIRS)
def test_cfg_pp_is_its_base_sampler_when_the_negative_agrees(cfg_pp: str, base: str) -> None:
    assert torch.allclose(_sample(cfg_pp, ToyModel(), 1.0), _sample(base, ToyModel(), 1.0), atol=1e-4)


def test_dpmpp_2s_cfg_pp_second_stage_uses_the_midpoints_negative_as_comfyui() -> None:
    # One step by hand with a model whose guided and negative estimates are known functions of x and sigma.
    def toy(x, sigma, **_):
        return torch.tanh(x / (1 + sigma.reshape(-1, 1, 1, 1))) * 0.5

    class Guided:
        def __init__(self):
            self.record = None

        def add_post_cfg_function(self, fn):
            self.record = fn

        def __call__(self, x, sigma, **_):
            negative = toy(x, sigma) * 0.5
            return self.record({"denoised": toy(x, sigma), "uncond_denoised": negative})

    sigmas = torch.tensor([6.0, 2.0])
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4)) * 6.0
    out = SAMPLERS["dpmpp_2s_ancestral_cfg_pp"](Guided(), x, sigmas, eta=0.0)
    t, t_next = sigmas[0].log().neg(), sigmas[1].log().neg()
    h = t_next - t
    s = t + 0.5 * h
    first, first_neg = toy(x, sigmas[:1]), toy(x, sigmas[:1]) * 0.5
    x_2 = (s.neg().exp() / t.neg().exp()) * (x + (first - first_neg)) - (-h * 0.5).expm1() * first
    second, second_neg = toy(x_2, s.neg().exp().reshape(1)), toy(x_2, s.neg().exp().reshape(1)) * 0.5
    expected = (t_next.neg().exp() / t.neg().exp()) * (x + (first - second_neg)) - (-h).expm1() * second
    assert torch.equal(out, expected)


def test_euler_cfg_pp_steps_along_the_negative_direction_even_at_cfg_1() -> None:
    model = ToyModel()
    got = _sample("euler_cfg_pp", model, -1.0, cfg=1.0)
    assert all(call["shape"][0] == 2 for call in model.calls)  # the negative is evaluated with the positive
    probe = ToyModel()
    x = prepare_noise(torch.zeros(1, 4, 8, 8), 9) * 14.6  # the start latent: an empty one noised to sigma 0
    for i in range(len(SIGMAS) - 1):
        s = SIGMAS[i].reshape(1)
        c = probe.denoise(x, s, text(1.0))
        u = probe.denoise(x, s, text(-1.0))
        x = c + (x - u) / s * SIGMAS[i + 1]
    assert torch.allclose(got, x / 0.5, atol=1e-4)
    assert not torch.allclose(got, _sample("euler", ToyModel(), -1.0, cfg=1.0), atol=1e-3)


def test_sampler_euler_ancestral_cfgpp_node() -> None:
    (sampler,) = SamplerEulerAncestralCFGPP().get_sampler(0.5, 1.2)
    assert sampler.name == "euler_ancestral_cfg_pp" and sampler.options == {"eta": 0.5, "s_noise": 1.2}
    assert torch.allclose(_sample("euler_ancestral_cfg_pp", ToyModel(), 1.0),
                          _sample("euler_ancestral", ToyModel(), 1.0), atol=1e-4)
