"""SelfAttentionGuidance: its attention-with-scores, blur and mask against independent versions, and a run on SD1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hearth_samplers.nodes_self_attention_guidance import (
    SelfAttentionGuidance,
    attention_with_scores,
    blurred_where_attended,
    gaussian_blur,
)

from .sd_workflow import KEPT, sd1_prompt, sd_pack  # noqa: F401
from .toy_model import ToyModel


def test_attention_with_scores_matches_scaled_dot_product_attention() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 6, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    out, scores = attention_with_scores(q, k, v, heads=2)
    split = [t.reshape(2, 6, 2, 4).transpose(1, 2) for t in (q, k, v)]
    expected = F.scaled_dot_product_attention(*split).transpose(1, 2).reshape(2, 6, 8)
    assert torch.allclose(out, expected, atol=1e-5)
    assert scores.shape == (4, 6, 6) and torch.allclose(scores.sum(-1), torch.ones(4, 6))
    # Batch-major: item 1, head 0 is row 2.
    qh, kh = q[1, :, :4], k[1, :, :4]
    assert torch.allclose(scores[2], torch.softmax(qh @ kh.T / 2.0, dim=-1), atol=1e-6)


def test_gaussian_blur_is_a_normalised_separable_kernel_with_reflect_padding() -> None:
    image = torch.randn(1, 2, 10, 10)
    got = gaussian_blur(image, 9, 2.0).numpy()
    x = np.linspace(-4, 4, 9)
    line = np.exp(-0.5 * (x / 2.0) ** 2)
    line /= line.sum()
    padded = np.pad(image.numpy().astype(np.float64), ((0, 0), (0, 0), (4, 4), (4, 4)), mode="reflect")
    expected = np.zeros((1, 2, 10, 10))
    for dy in range(9):
        for dx in range(9):
            expected += line[dy] * line[dx] * padded[:, :, dy:dy + 10, dx:dx + 10]
    assert np.allclose(got, expected, atol=1e-5)


def test_blur_applies_where_the_tokens_are_attended() -> None:
    x0 = torch.randn(1, 4, 16, 16)
    queries = 16  # a 4 x 4 middle block: the 16 x 16 latent halved twice
    scores = torch.full((2, queries, queries), 0.5 / (queries - 1))
    scores[:, :, 5] = 0.5  # every query looks at token 5 (row 1, column 1 of the 4 x 4 grid)
    got = blurred_where_attended(x0, scores, 2.0)
    mask = torch.zeros(16, 16)
    mask[4:8, 4:8] = 1.0
    blurred = gaussian_blur(x0, 9, 2.0)
    assert torch.allclose(got, blurred * mask + x0 * (1 - mask), atol=1e-6)
    assert math.isclose(float(mask.sum()), 16.0)


def test_a_model_without_attention_hooks_is_refused() -> None:
    with pytest.raises(ValueError, match="SelfAttentionGuidance: this MODEL \\(ToyModel\\) has no attention hooks"):
        SelfAttentionGuidance().patch(ToyModel(), 0.5, 2.0)


def test_sag_on_sd1_through_the_executor(sd_pack, run_prompt) -> None:  # noqa: F811
    assert run_prompt(sd1_prompt(steps=1, cfg=1.0)).ok
    plain = KEPT["latent"]["samples"]
    extra = {"10": {"class_type": "SelfAttentionGuidance", "inputs": {"model": ["1", 0], "scale": 2.0,
                                                                     "blur_sigma": 2.0}},
             "11": {"class_type": "Keep", "inputs": {"name": "model", "model": ["10", 0]}}}
    result = run_prompt(sd1_prompt(model=["10", 0], steps=1, cfg=1.0, **extra))
    assert result.ok, result.error
    assert KEPT["model"].model_options["disable_cfg1_optimization"] is True
    sampled = KEPT["latent"]["samples"]
    assert torch.isfinite(sampled).all()
    # At cfg 1 the guided prediction is the positive's: any change is SAG's own term.
    assert float((sampled - plain).abs().max()) > 1e-3
