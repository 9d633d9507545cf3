"""The shapes data set: deterministic from its seed, distinct pictures, captions that say what is drawn."""

from __future__ import annotations

import numpy as np
import pytest
from hearth_sd.trained.shapes import (
    BACKGROUND,
    COLOUR_RGB,
    COLOURS,
    SHAPES,
    all_captions,
    fill_ratio,
    make_shapes,
    parse_caption,
)


@pytest.fixture(scope="module")
def data():
    return make_shapes(60, seed=3)


def test_same_seed_same_bytes_other_seed_other_pictures(data):
    again = make_shapes(60, seed=3)
    assert np.array_equal(data.images, again.images) and data.captions == again.captions
    assert not np.array_equal(data.images, make_shapes(60, seed=4).images)


def test_images_are_distinct_64px_rgb_and_classes_balanced(data):
    assert data.images.shape == (60, 64, 64, 3) and data.images.dtype == np.uint8
    assert len({img.tobytes() for img in data.images}) == 60
    # 20 classes cycled over 60 images: each colour x shape appears exactly 3 times.
    pairs = list(zip(data.labels["colour"].tolist(), data.labels["shape"].tolist(), strict=True))
    assert {pairs.count(p) for p in set(pairs)} == {3} and len(set(pairs)) == len(COLOURS) * len(SHAPES)


def test_captions_name_the_colour_and_shape_drawn(data):
    bg = np.array(BACKGROUND, dtype=float)
    for img, text, colour in zip(data.images, data.captions, data.labels["colour"], strict=True):
        assert parse_caption(text)["colour"] == colour
        pixels = img.reshape(-1, 3).astype(float)
        fg = pixels[np.linalg.norm(pixels - bg, axis=1) > 60]
        # The shape's solid pixels are the caption's colour (within the jitter), not another one.
        nearest = np.argmin([np.linalg.norm(np.median(fg, 0) - np.array(COLOUR_RGB[c])) for c in COLOURS])
        assert COLOURS[nearest] in text
    assert set(data.captions) == set(all_captions()) and len(all_captions()) == 20


def test_outlined_style_lowers_the_fill_ratio_per_shape():
    filled, outlined = make_shapes(20, seed=5), make_shapes(20, seed=5, style="outlined")
    assert filled.captions == outlined.captions  # same draw, only the style differs
    assert (fill_ratio(outlined.images) < fill_ratio(filled.images) - 0.1).all()
    assert fill_ratio(np.full((1, 64, 64, 3), BACKGROUND, dtype=np.uint8))[0] == 0.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="not a shapes caption.*colour"):
        parse_caption("a purple circle")
    with pytest.raises(ValueError, match="unknown style 'dotted'"):
        make_shapes(2, style="dotted")
    with pytest.raises(ValueError, match="n must be at least 1"):
        make_shapes(0)
    with pytest.raises(ValueError, match=r"expected images \[N, H, W, 3\]"):
        fill_ratio(np.zeros((64, 64, 3)))
