"""The judge itself: right on data-set pictures it never saw, at chance on noise, deterministic, and strict on input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hearth_sd.trained.judge import Judge, held_out_accuracy, style_statistic, train_judge
from hearth_sd.trained.shapes import ATTRIBUTES, BACKGROUND, SHAPES, all_captions, make_shapes


def test_held_out_accuracy_is_at_least_97_percent_per_attribute(judge: Judge) -> None:
    for style, score in held_out_accuracy(judge).items():
        print(f"held-out {style}: {score.line()}")
        for name, accuracy in score.per_attribute.items():
            assert accuracy >= 0.97, f"{style} {name}: {accuracy:.1%} on held-out data-set pictures"


def test_noise_and_blank_pictures_score_at_chance(judge: Judge) -> None:
    """What a sampler returning garbage gives: every prompt of the grammar, pictures that show none of them."""
    captions = all_captions() * 10
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(len(captions), 64, 64, 3, generator=g)
    blank = torch.tensor(BACKGROUND, dtype=torch.float32).div(255).expand(len(captions), 64, 64, 3)
    for pictures in (noise, blank):
        score = judge.score(pictures, captions)
        for name, labels in ATTRIBUTES.items():  # a constant answer scores exactly 1/K on balanced prompts
            assert score.per_attribute[name] <= 1 / len(labels) + 0.1, score.line()
        assert score.both <= 0.15, score.line()


def test_training_is_deterministic() -> None:
    first, second = (train_judge(images_per_style=40, steps=5) for _ in range(2))
    for (name, a), (_, b) in zip(first.net.state_dict().items(), second.net.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_style_statistic_is_lower_for_outlined_shapes() -> None:
    filled, outlined = (make_shapes(40, seed=5, style=style) for style in ("filled", "outlined"))
    for shape in range(len(SHAPES)):
        a = style_statistic(filled.images)[filled.labels["shape"] == shape]
        b = style_statistic(outlined.images)[outlined.labels["shape"] == shape]
        assert b.max() < a.min(), SHAPES[shape]
    as_image = torch.from_numpy(filled.images).float() / 255  # a decoded IMAGE (0..1) measures the same
    np.testing.assert_allclose(style_statistic(as_image), style_statistic(filled.images), atol=0.02)


def test_bad_input_says_what_is_wrong(judge: Judge) -> None:
    with pytest.raises(ValueError, match=r"\[N, 64, 64, 3\].*got shape \(2, 16, 16, 3\)"):
        judge.predict(torch.zeros(2, 16, 16, 3))
    with pytest.raises(ValueError, match="uint8 .* or float"):
        judge.predict(torch.zeros(2, 64, 64, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="2 pictures but 1 captions"):
        judge.score(torch.zeros(2, 64, 64, 3), ["a red circle"])
    with pytest.raises(ValueError, match="not a shapes caption"):
        judge.score(torch.zeros(1, 64, 64, 3), ["a purple hexagon"])
