"""What the sampler hands a model's evaluation besides the conditioning, as ComfyUI's extra_conds receive it:
the seed, the scaled input latent, the inpainting mask; and the positive's ControlNets shared with the negative."""

from __future__ import annotations

import torch
from hearth_samplers.nodes_guiders import RandomNoise
from hearth_samplers.nodes_ksampler import KSampler
from hearth_samplers.regions import share_control_with_negative
from hearth_samplers.sampling import Guider, sampler_object

from .toy_model import ToyModel, text


def test_seed_latent_and_mask_reach_every_model_call() -> None:
    model = ToyModel()
    latent = torch.arange(2 * 4 * 8 * 8, dtype=torch.float32).reshape(2, 4, 8, 8) / 100
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 4:] = 1.0
    KSampler().sample(model, 21, 2, 3.0, "euler", "normal", [[text(1.0), {}]], [[text(-1.0), {}]],
                      {"samples": latent, "noise_mask": mask})
    assert len(model.calls) == 2
    for call in model.calls:
        options = call["options"]
        assert options["seed"] == 21
        # Positive and negative in one batch: the latent (scaled by process_latent_in) once per conditioning.
        assert torch.equal(options["latent_image"], torch.cat([latent * 0.5, latent * 0.5]))
        assert options["denoise_mask"].shape == (4, 4, 8, 8)
        assert torch.equal(options["denoise_mask"][:, :, :, 4:], torch.ones(4, 4, 8, 4))
        assert float(options["denoise_mask"][:, :, :, :4].abs().max()) == 0.0


def test_an_area_entry_gets_its_crop_of_the_latent_and_no_mask_without_inpainting() -> None:
    model = ToyModel()
    latent = torch.randn(1, 4, 16, 16)
    positive = [[text(1.0), {"area": (8, 8, 8, 0)}]]
    guider = Guider(model, positive)
    (noise,) = RandomNoise().get_noise(4)
    guider.sample(noise.generate_noise({"samples": latent}), latent, sampler_object("euler"),
                  torch.tensor([1.0, 0.0]), seed=None)
    (call,) = model.calls
    assert call["shape"] == (1, 4, 8, 8)
    assert torch.equal(call["options"]["latent_image"], latent[:, :, 8:, :8] * 0.5)
    assert call["options"]["seed"] == 0 and "denoise_mask" not in call["options"]


def test_controlnet_apply_controls_are_shared_with_the_negative_as_comfyui_does() -> None:
    a, b = object(), object()
    positive = [[text(1.0), {"control": a, "control_apply_to_uncond": True}],
                [text(1.0), {"control": b, "control_apply_to_uncond": True}],
                [text(1.0), {"control": object(), "control_apply_to_uncond": False}],
                [text(1.0), {"control": object(), "control_apply_to_uncond": True, "area": (8, 8, 0, 0)}]]
    negative = [[text(-1.0), {}], [text(-2.0), {"strength": 0.5}], [text(-3.0), {"area": (8, 8, 0, 0)}]]
    shared = share_control_with_negative(positive, negative)
    assert shared[0][1]["control"] is a and shared[1][1]["control"] is b and "control" not in shared[2][1]
    assert shared[1][1]["strength"] == 0.5 and "control" not in negative[0][1]  # copies; the input is unchanged
    # One plain negative entry: the last control wins (ComfyUI overwrites it in turn).
    assert share_control_with_negative(positive, negative[:1])[0][1]["control"] is b
    # A negative that already has a control of its own keeps what it has.
    own = [[text(-1.0), {"control": object()}], [text(-2.0), {}]]
    assert share_control_with_negative(positive, own) is own
    advanced = [[text(1.0), {"control": a, "control_apply_to_uncond": False}]]
    assert share_control_with_negative(advanced, negative) is negative


def test_the_negative_is_sampled_with_the_shared_control() -> None:
    control = object()
    model = ToyModel()
    positive = [[text(1.0), {"control": control, "control_apply_to_uncond": True}]]
    KSampler().sample(model, 1, 1, 3.0, "euler", "normal", positive, [[text(-1.0), {}]],
                      {"samples": torch.zeros(1, 4, 8, 8)})
    (call,) = model.calls
    assert call["options"]["control"] is control and call["shape"][0] == 2  # both halves, one batch
