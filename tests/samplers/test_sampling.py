"""The sampling pipeline: denoise and start/end steps, leftover noise, noise masks, seeds and batch_index."""

from __future__ import annotations

import pytest
import torch
from hearth_samplers.noise import prepare_noise
from hearth_samplers.sampling import (
    Guider,
    calculate_sigmas,
    common_ksampler,
    ksampler_sigmas,
    sampler_object,
)

from .toy_model import ToyModel, text

POSITIVE = [[text(1.0), {}]]
NEGATIVE = [[text(-1.0), {}]]


def _latent(batch: int = 1, value: float = 0.0) -> dict:
    return {"samples": torch.full((batch, 4, 8, 8), value)}


def test_denoise_takes_the_tail_of_a_longer_schedule() -> None:
    sampling = ToyModel().sampling
    full = calculate_sigmas(sampling, "karras", 20, "euler")
    partial = ksampler_sigmas(sampling, "karras", "euler", 10, denoise=0.5)
    assert torch.equal(partial, full[-11:])
    assert len(ksampler_sigmas(sampling, "karras", "euler", 10, denoise=0.0)) == 0


def test_start_and_end_steps_and_leftover_noise() -> None:
    sampling = ToyModel().sampling
    full = calculate_sigmas(sampling, "normal", 10, "euler")
    first = ksampler_sigmas(sampling, "normal", "euler", 10, last_step=4, force_full_denoise=False)
    second = ksampler_sigmas(sampling, "normal", "euler", 10, start_step=4)
    assert torch.equal(first, full[:5]) and first[-1] > 0  # the leftover noise is kept for the second pass
    assert torch.equal(second, full[4:])
    assert ksampler_sigmas(sampling, "normal", "euler", 10, last_step=4, force_full_denoise=True)[-1] == 0
    assert len(ksampler_sigmas(sampling, "normal", "euler", 10, start_step=10)) == 0


def test_samplers_that_step_between_sigmas_drop_the_penultimate_one() -> None:
    sampling = ToyModel().sampling
    plain = calculate_sigmas(sampling, "karras", 10, "euler")
    dpm2 = calculate_sigmas(sampling, "karras", 10, "dpm_2")
    longer = calculate_sigmas(sampling, "karras", 11, "euler")
    assert len(plain) == len(dpm2) == 11
    assert torch.equal(dpm2, torch.cat([longer[:-2], longer[-1:]]))


def test_same_seed_same_result_and_a_different_seed_differs() -> None:
    def run(seed: int) -> torch.Tensor:
        out = common_ksampler(ToyModel(), seed, 6, 5.0, "euler_ancestral", "karras", POSITIVE, NEGATIVE, _latent(2))
        return out["samples"]

    assert torch.equal(run(3), run(3))
    assert not torch.allclose(run(3), run(4))


def test_batch_index_reproduces_an_item_of_the_batch() -> None:
    latent = torch.zeros(3, 4, 8, 8)
    batch = prepare_noise(latent, 42)
    alone = prepare_noise(latent[:1], 42, batch_index=[2])
    assert torch.equal(alone[0], batch[2])
    whole = common_ksampler(ToyModel(), 42, 5, 4.0, "dpmpp_2m", "karras", POSITIVE, NEGATIVE, _latent(3))
    single = common_ksampler(ToyModel(), 42, 5, 4.0, "dpmpp_2m", "karras", POSITIVE, NEGATIVE,
                             {"samples": torch.zeros(1, 4, 8, 8), "batch_index": [2]})
    assert torch.allclose(single["samples"][0], whole["samples"][2], atol=1e-6)
    assert single["batch_index"] == [2]


def test_noise_mask_keeps_the_unmasked_latent() -> None:
    latent = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))}
    mask = torch.zeros(1, 64, 64)
    mask[:, :, 32:] = 1.0  # regenerate the right half only (mask at image resolution)
    out = common_ksampler(ToyModel(), 1, 8, 3.0, "euler", "normal", POSITIVE, NEGATIVE,
                          {**latent, "noise_mask": mask})["samples"]
    assert torch.allclose(out[..., :3], latent["samples"][..., :3], atol=1e-5)
    assert not torch.allclose(out[..., 5:], latent["samples"][..., 5:], atol=1e-2)


def test_full_denoise_scales_noise_by_sqrt_one_plus_sigma_squared() -> None:
    model = ToyModel()
    sigmas = torch.tensor([model.sampling.sigma_max, 0.0])
    seen = {}

    def capture(model_fn, x, sigmas, **kwargs):
        seen["x"] = x
        return x

    noise = torch.ones(1, 4, 8, 8)
    Guider(model, POSITIVE).sample(noise, torch.zeros(1, 4, 8, 8), sampler_object("euler").__class__(capture),
                                   sigmas)
    assert torch.allclose(seen["x"], noise * (1 + model.sampling.sigma_max**2) ** 0.5)


@pytest.mark.parametrize("name", ["euler", "dpmpp_2m", "uni_pc", "lcm", "ddim", "dpmpp_3m_sde"])
def test_ksampler_turns_noise_into_the_models_image(name: str) -> None:
    # The toy network pulls every latent towards its conditioning's value; sampled from pure noise, the result
    # is the model's clean image, not noise.
    model = ToyModel(constant=True)
    out = common_ksampler(model, 0, 12, 1.0, name, "karras", [[text(0.75), {}]], NEGATIVE, _latent(2))["samples"]
    assert torch.allclose(out, torch.full_like(out, 0.75 / 0.5), atol=2e-2)  # process_latent_out of 0.75
    assert len(model.calls) == 12  # one model call per step at cfg 1, UniPC's corrector included
    assert all(call["shape"][0] == 2 for call in model.calls)


def test_preview_is_a_small_rgb_image_of_the_first_item() -> None:
    from hearth_samplers.preview import progress_preview

    latent = torch.zeros(2, 4, 16, 8)
    latent[1] = 5.0  # the second item must not show
    fmt, image, max_size = progress_preview(latent)
    assert fmt == "JPEG" and image.mode == "RGB" and image.size == (8, 16) and max_size == 512
    assert image.getpixel((0, 0)) == (127, 127, 127)  # zero latent: mid grey
    _, sdxl, _ = progress_preview(latent, "sdxl")
    assert sdxl.getpixel((0, 0))[0] == int((1 + 0.1084) * 127.5)  # SDXL's factors carry a bias
    assert progress_preview(torch.zeros(1, 16, 8, 8)) is None  # unknown latent layouts get no preview


def test_partial_denoise_starts_from_the_latent_noised_to_the_first_sigma() -> None:
    model = ToyModel()
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(9))
    sigmas = ksampler_sigmas(model.sampling, "normal", "euler", 4, denoise=0.5)
    seen = {}

    def capture(model_fn, x, sigmas, **kwargs):
        seen["x"] = x
        return x

    noise = prepare_noise(latent, 3)
    Guider(model, POSITIVE).sample(noise, latent, sampler_object("euler").__class__(capture), sigmas)
    assert sigmas[0] < model.sampling.sigma_max * 0.5
    assert torch.allclose(seen["x"], latent * 0.5 + noise * sigmas[0])  # process_latent_in, then + noise * sigma
    unchanged = common_ksampler(model, 3, 4, 5.0, "euler", "normal", POSITIVE, NEGATIVE, {"samples": latent},
                                denoise=0.0)
    assert torch.equal(unchanged["samples"], latent) and not model.calls
