"""The quality bench's reference: the training set's exact denoiser (harness.TrainingSetDenoiser), on its own and
through KSampler in place of the UNet."""

from __future__ import annotations

import pytest
import torch
from hearth_sd.trained.shapes import all_captions, make_shapes

from .harness import Pipeline, TrainingSetDenoiser


class _Model:
    sampling = "the MODEL's own"


def _denoiser() -> tuple[TrainingSetDenoiser, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a_cond, b_cond = torch.randn(1, 77, 8, generator=g), torch.randn(1, 77, 8, generator=g)
    a, b = 3 * torch.randn(2, 4, 2, 2, generator=g), 3 * torch.randn(1, 4, 2, 2, generator=g)
    return TrainingSetDenoiser(_Model(), [(a_cond, a), (b_cond, b)]), a, b, torch.cat([a_cond, b_cond])


def test_the_exact_denoiser_is_the_nearest_picture_at_low_noise_and_the_mean_at_high():
    exact, a, b, conds = _denoiser()
    near = a + 0.01 * torch.randn(a.shape, generator=torch.Generator().manual_seed(1))
    low = exact.denoise(near, torch.tensor([0.05]), conds[:1])
    assert torch.allclose(low, a, atol=1e-4)  # each row snaps to its own training latent
    high = exact.denoise(near, torch.tensor([1e4]), conds[:1])
    assert torch.allclose(high, a.mean(0, keepdim=True).expand_as(a), atol=1e-3)  # nothing seen: their mean
    mixed = exact.denoise(torch.cat([near[:1], near[:1]]), torch.tensor([0.05, 0.05]), conds)
    assert torch.allclose(mixed[0], a[0], atol=1e-4) and torch.allclose(mixed[1], b[0], atol=1e-4)  # per row
    assert exact.sampling == "the MODEL's own"  # the rest of the MODEL is the real one's


def test_the_exact_denoiser_names_a_prompt_it_has_no_pictures_for():
    exact, a, _, _ = _denoiser()
    with pytest.raises(ValueError, match="no training latents"):
        exact.denoise(a, torch.tensor([1.0]), torch.zeros(1, 77, 8))


def test_ksampler_with_the_training_set_redraws_its_pictures_of_the_prompt():
    from hearth_sd.trained.train import CHECKPOINT_NAME, SHIPPED_DIR

    data = make_shapes(200, seed=0)  # 10 training pictures a caption: a quick reference
    pipe = Pipeline.open(SHIPPED_DIR, CHECKPOINT_NAME)
    try:
        pipe.use_training_set(data.images, data.captions)
        prompts = all_captions()
        images = pipe.txt2img(prompts, sampler="euler", scheduler="karras", steps=20, cfg=5.0, seed=0)
    finally:
        pipe.close()
    training = torch.from_numpy(data.images).float() / 255.0
    for image, prompt in zip(images, prompts, strict=True):
        own = training[torch.tensor([c == prompt for c in data.captions])]
        others = training[torch.tensor([c != prompt for c in data.captions])]
        # A copy of one of the prompt's own training pictures, up to the VAE's round trip (0.012 measured), nearer
        # than any other caption's picture.
        nearest = (own - image).abs().mean(dim=(1, 2, 3)).min()
        assert nearest < 0.03, f"{prompt!r}: {float(nearest):.3f} from its nearest training picture"
        assert (others - image).abs().mean(dim=(1, 2, 3)).min() > nearest


class _Unet:
    """A stand-in MODEL whose own prediction is a constant, to see which rows it answers."""

    sampling = "the MODEL's own"

    def denoise(self, x, sigma, cond, options=None):
        return torch.full_like(x, 7.0)


def test_below_a_sigma_the_exact_denoiser_answers_and_above_it_the_model():
    _, a, b, conds = _denoiser()
    exact = TrainingSetDenoiser(_Unet(), [(conds[:1], a), (conds[1:], b)], below=1.0)
    near = a + 0.01 * torch.randn(a.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(exact.denoise(near, torch.tensor([2.0]), conds[:1]), torch.full_like(near, 7.0))
    assert torch.allclose(exact.denoise(near, torch.tensor([0.05]), conds[:1]), a, atol=1e-4)
    mixed = exact.denoise(near, torch.tensor([0.05, 2.0]), conds[:1])  # a row each side of the cut
    assert torch.allclose(mixed[0], a[0], atol=1e-4) and torch.equal(mixed[1], torch.full_like(a[1], 7.0))
