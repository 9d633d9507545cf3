"""The sampling nodes: through the executor (progress, previews, interrupt, other packs' samplers) and directly."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hearth_samplers.nodes_custom_sampling import KSamplerSelect, SamplerCustom, SamplerCustomAdvanced
from hearth_samplers.nodes_guiders import BasicGuider, CFGGuider, DualCFGGuider, RandomNoise
from hearth_samplers.nodes_ksampler import KSampler, KSamplerAdvanced
from hearth_samplers.nodes_sigmas import BasicScheduler, FlipSigmas, SplitSigmas

from hearth.core import context
from hearth.core.hookspecs import hookimpl

from .toy_model import ToyModel, text

KEPT: dict[str, Any] = {}


class ToyModelNode:
    CATEGORY = "testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"interrupt_after": ("INT", {"default": 0, "min": 0})}}

    def load(self, interrupt_after):
        model = ToyModel()
        if interrupt_after:
            denoise = model.denoise

            def interrupting(*args, **kwargs):
                if len(model.calls) + 1 == interrupt_after:
                    context.current().interrupt.set()  # as the user pressing "cancel" mid-sampling
                return denoise(*args, **kwargs)

            model.denoise = interrupting
        KEPT["model"] = model
        return (model,)


class ToyTextNode:
    CATEGORY = "testing"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0, "min": -10.0, "max": 10.0})}}

    def encode(self, value):
        return ([[text(value), {}]],)


class ToyLatentNode:
    CATEGORY = "testing"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def make(self):
        return ({"samples": torch.zeros(2, 4, 8, 8)},)


class KeepLatent:
    CATEGORY = "testing"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "keep"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",)}}

    def keep(self, samples):
        KEPT["latent"] = samples
        return {}


def _halfway(model, x, sigmas, *, extra_args=None, callback=None, disable=None):
    """A sampler from another pack: one step of half the way to the model's estimate."""
    denoised = model(x, sigmas[0] * x.new_ones([x.shape[0]]))
    return (x + denoised) / 2


class TestPack:
    @hookimpl
    def register_nodes(self):
        return {"ToyModel": ToyModelNode, "ToyText": ToyTextNode, "ToyLatent": ToyLatentNode,
                "KeepLatent": KeepLatent}

    @hookimpl
    def register_samplers(self):
        return {"halfway": _halfway}


@pytest.fixture
def toy_pack(register_plugin, hearth_plugins):
    register_plugin(TestPack(), "toy_pack")
    return hearth_plugins


def _prompt(sampler: str = "euler", steps: int = 5, interrupt_after: int = 0) -> dict[str, Any]:
    return {
        "1": {"class_type": "ToyModel", "inputs": {"interrupt_after": interrupt_after}},
        "2": {"class_type": "ToyText", "inputs": {"value": 1.0}},
        "3": {"class_type": "ToyText", "inputs": {"value": -1.0}},
        "4": {"class_type": "ToyLatent", "inputs": {}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "seed": 7, "steps": steps, "cfg": 4.0, "sampler_name": sampler,
            "scheduler": "karras", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "denoise": 1.0}},
        "6": {"class_type": "KeepLatent", "inputs": {"samples": ["5", 0]}},
    }


def test_ksampler_reports_progress_with_a_preview_every_step(toy_pack, run_prompt) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    result = run_prompt(_prompt(steps=5), emit=lambda event, data: events.append((event, data)))
    assert result.ok, result.error
    ticks = [data for event, data in events if event == "progress" and data["node"] == "5"]
    assert [(t["value"], t["max"]) for t in ticks] == [(i, 5) for i in range(1, 6)]
    previews = [t.get("preview") for t in ticks]
    assert all(p is not None and p[0] == "JPEG" and p[1].size == (8, 8) for p in previews)
    assert KEPT["latent"]["samples"].shape == (2, 4, 8, 8)


def test_interrupt_stops_sampling_at_the_step(toy_pack, run_prompt) -> None:
    result = run_prompt(_prompt(steps=10, interrupt_after=3))
    assert result.status == "interrupted"
    assert len(KEPT["model"].calls) == 3  # the step that saw the interrupt was the last


def test_other_packs_samplers_are_listed_and_run(toy_pack, run_prompt) -> None:
    listed = toy_pack.nodes()["KSampler"].cls.INPUT_TYPES()["required"]["sampler_name"][0]
    assert "halfway" in listed and "dpmpp_2m" in listed
    assert run_prompt(_prompt(sampler="halfway")).ok
    assert len(KEPT["model"].calls) == 1


def _latent() -> dict[str, Any]:
    return {"samples": torch.zeros(1, 4, 8, 8)}


def test_sampler_custom_advanced_from_parts_equals_ksampler() -> None:
    model, positive, negative = ToyModel(), [[text(1.0), {}]], [[text(-1.0), {}]]
    (expected,) = KSampler().sample(model, 11, 6, 3.0, "dpmpp_2m", "normal", positive, negative, _latent())
    (noise,) = RandomNoise().get_noise(11)
    (guider,) = CFGGuider().get_guider(model, positive, negative, 3.0)
    (sampler,) = KSamplerSelect().get_sampler("dpmpp_2m")
    (sigmas,) = BasicScheduler().get_sigmas(model, "normal", 6, 1.0)
    out, denoised = SamplerCustomAdvanced().sample(noise, guider, sampler, sigmas, _latent())
    assert torch.allclose(out["samples"], expected["samples"], atol=1e-6)
    assert denoised["samples"].shape == out["samples"].shape
    custom, _ = SamplerCustom().sample(model, True, 11, 3.0, positive, negative, sampler, sigmas, _latent())
    assert torch.allclose(custom["samples"], expected["samples"], atol=1e-6)


def test_two_advanced_passes_with_leftover_noise_equal_one_pass() -> None:
    model, positive, negative = ToyModel(), [[text(1.0), {}]], [[text(-1.0), {}]]
    (whole,) = KSampler().sample(model, 5, 8, 2.0, "euler", "karras", positive, negative, _latent())
    common = dict(steps=8, cfg=2.0, sampler_name="euler", scheduler="karras", positive=positive, negative=negative)
    (first,) = KSamplerAdvanced().sample(model, "enable", 5, latent_image=_latent(), start_at_step=0,
                                         end_at_step=3, return_with_leftover_noise="enable", **common)
    (second,) = KSamplerAdvanced().sample(model, "disable", 5, latent_image=first, start_at_step=3,
                                          end_at_step=10000, return_with_leftover_noise="disable", **common)
    assert first["samples"].abs().max() > 1.0  # still noisy in between
    assert torch.allclose(second["samples"], whole["samples"], atol=1e-5)


def test_dual_cfg_and_basic_guiders() -> None:
    model = ToyModel(constant=True)
    cond1, cond2, negative = [[text(3.0), {}]], [[text(2.0), {}]], [[text(0.5), {}]]
    x, sigma = torch.zeros(1, 4, 8, 8), torch.tensor([1.0])

    def denoised(guider):
        from hearth_samplers.guidance import Guidance
        from hearth_samplers.regions import resolve

        def regions(c):
            return None if c is None else resolve(c, x.shape, model.sampling)

        return Guidance(model, regions(guider.positive), regions(guider.negative), guider.cfg,
                        regions(guider.middle), guider.cfg_2, guider.style)(x, sigma)[0, 0, 0, 0].item()

    (regular,) = DualCFGGuider().get_guider(model, cond1, cond2, negative, 4.0, 2.0, "regular")
    assert denoised(regular) == pytest.approx(0.5 + (2.0 - 0.5) * 2.0 + (3.0 - 2.0) * 4.0)
    (nested,) = DualCFGGuider().get_guider(model, cond1, cond2, negative, 4.0, 2.0, "nested")
    assert denoised(nested) == pytest.approx(0.5 + ((2.0 + (3.0 - 2.0) * 4.0) - 0.5) * 2.0)
    (basic,) = BasicGuider().get_guider(model, cond1)
    assert denoised(basic) == pytest.approx(3.0)


def test_split_and_flip_sigmas() -> None:
    sigmas = torch.tensor([10.0, 5.0, 2.0, 1.0, 0.0])
    high, low = SplitSigmas().get_sigmas(sigmas, 2)
    assert high.tolist() == [10.0, 5.0, 2.0] and low.tolist() == [2.0, 1.0, 0.0]
    (flipped,) = FlipSigmas().get_sigmas(sigmas)
    assert flipped.tolist() == pytest.approx([0.0001, 1.0, 2.0, 5.0, 10.0])
    assert sigmas[0] == 10.0  # the input is not changed
