"""The discrete schedule equals diffusers' scaled-linear one; eps and v parameterisations recover x0."""

from __future__ import annotations

import pytest
import torch
from hearth_sd.sampling import ModelSampling

diffusers = pytest.importorskip("diffusers", reason="diffusers is a test dependency")


def test_schedule_matches_diffusers():
    ours = ModelSampling()
    ref = diffusers.DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    assert torch.allclose(ours.alphas_cumprod.float(), ref.alphas_cumprod, atol=1e-6)
    want_sigmas = ((1 - ref.alphas_cumprod) / ref.alphas_cumprod) ** 0.5
    # diffusers builds the betas in float32, we in float64 (as the original LDM code did): ~1e-5 apart.
    assert torch.allclose(ours.sigmas, want_sigmas, rtol=1e-4)
    assert ours.sigma_min == pytest.approx(0.0292, abs=1e-4) and ours.sigma_max == pytest.approx(14.6146, abs=1e-3)


def test_timestep_and_sigma_are_inverse_on_training_steps():
    s = ModelSampling()
    # ComfyUI's rule: a sigma maps to the training step nearest in log sigma, a whole number (no interpolation).
    t = torch.tensor([0.0, 1.0, 250.0, 998.0, 999.0])
    assert torch.equal(s.timestep(s.sigma(t)), t)
    assert s.timestep(s.sigma(torch.tensor([1.4, 250.6]))).tolist() == [1.0, 251.0]


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ideal_prediction_gives_back_the_clean_latent(prediction):
    s = ModelSampling(prediction=prediction)
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 4, 8, 8, generator=gen), torch.randn(2, 4, 8, 8, generator=gen)
    sigma = torch.tensor([0.5, 7.0])
    x = s.noise_scaling(sigma, noise, x0)
    alpha_t = (1 / (sigma**2 + 1).sqrt()).view(-1, 1, 1, 1)
    sigma_t = (sigma / (sigma**2 + 1).sqrt()).view(-1, 1, 1, 1)
    # What a perfect network outputs: the noise, or v = alpha_t * noise - sigma_t * x0 (Salimans & Ho 2022).
    output = noise if prediction == "eps" else alpha_t * noise - sigma_t * x0
    assert torch.allclose(s.calculate_input(sigma, x), alpha_t * x0 + sigma_t * noise, atol=1e-5)
    assert torch.allclose(s.calculate_denoised(sigma, output, x), x0, atol=1e-5)
