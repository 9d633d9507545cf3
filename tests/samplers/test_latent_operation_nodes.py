"""LATENT_OPERATION nodes: Reinhard tonemap and sharpen against independent numpy versions, and their use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hearth_samplers.guidance import Guidance
from hearth_samplers.nodes_latent_operations import (
    LatentApplyOperation,
    LatentApplyOperationCFG,
    LatentOperationSharpen,
    LatentOperationTonemapReinhard,
)
from hearth_samplers.regions import resolve

from .sd_workflow import KEPT, sd1_prompt, sd_pack  # noqa: F401
from .toy_model import ToyModel, text


def _latent() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 4, 6, 7) * 3


def test_tonemap_reinhard_compresses_each_pixel_vector_length() -> None:
    (op,) = LatentOperationTonemapReinhard().op(0.8)
    latent = _latent()
    a = latent.double().numpy()
    length = np.linalg.norm(a, axis=1, keepdims=True) + 1e-10
    top = (length.reshape(2, -1).std(axis=1, ddof=1) * 5 + length.reshape(2, -1).mean(axis=1)) * 0.8
    top = top.reshape(2, 1, 1, 1)
    expected = a / length * (top * length / (length + top))
    assert np.allclose(op(latent=latent).numpy(), expected, atol=1e-5)


def test_sharpen_is_an_unsharp_mask_of_the_pixel_directions() -> None:
    radius, sigma, alpha = 1, 0.8, 0.3
    (op,) = LatentOperationSharpen().op(radius, sigma, alpha)
    latent = _latent()
    a = latent.double().numpy()
    length = np.linalg.norm(a, axis=1, keepdims=True) + 1e-6
    direction = a / length
    coords = np.linspace(-1, 1, 3)
    g = np.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / (2 * sigma**2))
    kernel = -10 * alpha * g / g.sum()
    kernel[1, 1] += 1.0 - kernel.sum()
    padded = np.pad(direction, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    out = np.zeros_like(direction)
    for dy in range(3):
        for dx in range(3):
            out += kernel[dy, dx] * padded[:, :, dy:dy + 6, dx:dx + 7]
    assert np.allclose(op(latent=latent).numpy(), length * out, atol=1e-5)
    (wide,) = LatentOperationSharpen().op(9, 1.0, 0.1)
    with pytest.raises(ValueError, match="LatentOperationSharpen: sharpen_radius 9"):
        wide(latent=latent)


def test_apply_operation_keeps_the_other_latent_keys() -> None:
    (op,) = LatentOperationTonemapReinhard().op(1.0)
    latent = {"samples": _latent(), "batch_index": [3, 4]}
    (out,) = LatentApplyOperation().op(latent, op)
    assert out["batch_index"] == [3, 4] and torch.equal(out["samples"], op(latent=latent["samples"]))
    assert torch.equal(latent["samples"], _latent())


def test_apply_operation_cfg_changes_the_guidance_before_cfg() -> None:
    model = ToyModel()
    (patched,) = LatentApplyOperationCFG().patch(model, lambda latent: latent * 2)
    x, sigma = _latent()[:, :, :4, :4], torch.tensor([2.0])
    c = model.denoise(x, sigma.expand(2), text(1.0, batch=2))
    u = model.denoise(x, sigma.expand(2), text(-1.0, batch=2))
    positive = resolve([[text(1.0), {}]], x.shape, model.sampling)
    negative = resolve([[text(-1.0), {}]], x.shape, model.sampling)
    assert torch.allclose(Guidance(patched, positive, negative, 3.0)(x, sigma), u + 3.0 * 2 * (c - u), atol=1e-5)
    # At cfg 1 the negative is skipped (a zero prediction): the operation sees the positive alone.
    assert torch.allclose(Guidance(patched, positive, negative, 1.0)(x, sigma), 2 * c, atol=1e-5)


def test_tonemap_through_the_executor(sd_pack, run_prompt) -> None:  # noqa: F811
    extra = {
        "10": {"class_type": "LatentOperationTonemapReinhard", "inputs": {"multiplier": 1.0}},
        "11": {"class_type": "LatentApplyOperationCFG", "inputs": {"model": ["1", 0], "operation": ["10", 0]}},
        "12": {"class_type": "LatentOperationSharpen", "inputs": {"sharpen_radius": 2, "sigma": 1.0, "alpha": 0.1}},
        "13": {"class_type": "LatentApplyOperation", "inputs": {"samples": ["5", 0], "operation": ["12", 0]}},
        "14": {"class_type": "Keep", "inputs": {"name": "sharpened", "latent": ["13", 0]}},
    }
    result = run_prompt(sd1_prompt(model=["11", 0], **extra))
    assert result.ok, result.error
    (sharpen,) = LatentOperationSharpen().op(2, 1.0, 0.1)
    assert torch.allclose(KEPT["sharpened"]["samples"], sharpen(latent=KEPT["latent"]["samples"]), atol=1e-6)
