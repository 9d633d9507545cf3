"""What SDModel.denoise hands a ControlNet chain (the conditioning's "control": the UNet's inputs, the MODEL, the
number of conditionings batched) and what the UNet then gets from it (its residuals as ``control=``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_sd import loaders
from hearth_sd import model_options as options_
from hearth_sd.tiny import make_tiny_checkpoint


@pytest.fixture(scope="module")
def sd1(tmp_path_factory) -> Path:
    return make_tiny_checkpoint("sd1", tmp_path_factory.mktemp("ckpt") / "tiny-sd1.safetensors")


class RecordingControl:
    """A stand-in ControlNet chain: records what it was given and returns a recognisable residual dict."""

    def __init__(self, active: bool = True) -> None:
        self.calls: list[tuple] = []
        self.active = active
        self.residuals = {"input": [None], "middle": [torch.zeros(1)], "output": []}

    def get_control(self, x_in, sigma, timestep, context, y, model=None, batched_number=1):
        self.calls.append((x_in, sigma, timestep, context, y))
        self.model, self.batched_number = model, batched_number
        return self.residuals if self.active else None


def _inputs(model):
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([3.0, 3.0])
    cond = torch.randn(2, 77, 32, generator=torch.Generator().manual_seed(1))
    return x, sigma, cond


def test_control_is_asked_with_the_unet_inputs_and_its_residuals_reach_the_unet(sd1, monkeypatch):
    model, _, _ = loaders.checkpoint(sd1)
    seen = {}
    unet = model.diffusion.unet
    real_forward = unet.forward

    def forward(x, t, context, y=None, **kwargs):
        seen.update(x=x, t=t, context=context, kwargs=kwargs)
        return real_forward(x, t, context, y)

    monkeypatch.setattr(unet, "forward", forward)
    control = RecordingControl()
    x, sigma, cond = _inputs(model)
    model.denoise(x, sigma, cond, {"control": control})
    (x_in, sig, timestep, context, y), = control.calls
    sampling = model.sampling
    torch.testing.assert_close(x_in.float(), sampling.calculate_input(sigma, x))
    torch.testing.assert_close(sig.float(), sigma)
    torch.testing.assert_close(timestep.float(), sampling.timestep(sigma))
    assert y is None and context.shape == (2, 77, 32)
    assert control.model is model and control.batched_number == 1
    assert seen["kwargs"]["control"] is control.residuals
    torch.testing.assert_close(seen["x"], x_in)

    # Inactive at this sigma (None): the UNet gets no control argument at all.
    seen.clear()
    model.denoise(x, sigma, cond, {"control": RecordingControl(active=False)})
    assert "control" not in seen["kwargs"]


def test_control_goes_through_the_options_path_and_comfy_s_wrapper_sees_it(sd1, monkeypatch):
    model, _, _ = loaders.checkpoint(sd1)
    model = model.clone()
    given = {}

    def wrapper(apply_model, args):
        given.update(args["c"])
        return apply_model(args["input"], args["timestep"], **args["c"])

    model.set_model_unet_function_wrapper(wrapper)
    passed = {}
    real_run = options_.run_unet

    def run_unet(unet, x, t, context, y, transformer_options, **kwargs):
        passed.update(kwargs)
        return real_run(unet, x, t, context, y, transformer_options)

    monkeypatch.setattr(options_, "run_unet", run_unet)
    control = RecordingControl()
    x, sigma, cond = _inputs(model)
    model.denoise(x, sigma, cond, {"control": control, "cond_index": torch.tensor([0, 1])})
    assert given["control"] is control.residuals and passed["control"] is control.residuals
    assert control.batched_number == 2  # a positive and a negative share the call
    assert len(control.calls) == 1
