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
PAIRS = [("euler_cfg_pp", "euler"), ("euler_ancestral_cfg_pp", "euler_ancestral"), ("dpmpp_2m_cfg_pp", "dpmpp_2m"),
         ("dpmpp_2s_ancestral_cfg_pp", "dpmpp_2s_ancestral"),
         ("res_multistep_cfg_pp", "res_multistep"), ("res_multistep_ancestral_cfg_pp", "res_multistep_ancestral"),
         ("gradient_estimation_cfg_pp", "gradient_estimation")]


def _sample(name, model, negative_value, cfg=3.0):
    latent = torch.zeros(1, 4, 8, 8)
    guider = Guider(model, [[text(1.0), {}]], [[text(negative_value), {}]], cfg)
    return guider.sample(prepare_noise(latent, 9), latent, Sampler(SAMPLERS[name], name), SIGMAS, seed=9)


@pytest.mark.parametrize(("cfg_pp", "base"), PAIRS)
def test_cfg_pp_is_its_base_sampler_when_the_negative_agrees(cfg_pp: str, base: str) -> None:
    assert torch.allclose(_sample(cfg_pp, ToyModel(), 1.0), _sample(base, ToyModel(), 1.0), atol=1e-4)


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
