"""The "shapes" data set the trained miniature SD model learns from: coloured shapes on a plain background, with captions.

Every image is 64x64 RGB: one shape, filled (the default) or outlined, on a plain dark grey background
(:data:`BACKGROUND`). Its attributes, and their label numbers (the index in each tuple):

- ``colour``: :data:`COLOURS` = red, green, blue, yellow, white (each jittered a little per image);
- ``shape``: :data:`SHAPES` = circle, square, triangle, cross.

Size (half-extent 11..19 pixels) and position (anywhere the shape fits) vary at random and are not in the caption.

Caption grammar (one caption per image, lower case): ``"a {colour} {shape}"``, e.g. ``"a red circle"``.
The outlined style (what the LoRA learns) keeps the same captions; it is measured by :func:`fill_ratio`.

Everything is drawn by this module from a seed (``torch.Generator``), with 4x4 supersampling for smooth edges: the
same ``(n, seed, style)`` always gives the same bytes, on any machine. No download.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 64
COLOURS = ("red", "green", "blue", "yellow", "white")
SHAPES = ("circle", "square", "triangle", "cross")
ATTRIBUTES = {"colour": COLOURS, "shape": SHAPES}
STYLES = ("filled", "outlined")

# Well separated in RGB, and each far from the background, so a small judge tells them apart without doubt. Red is
# a light red: the old (220, 40, 40) differed from the background in one channel and only as much in brightness as
# blue, and the trained VAE coded it a fifth as far from the background in latent space as white, so the diffusion
# model saw it through the noise last and drew it worst (see the model card in trained/models).
COLOUR_RGB = {
    "red": (235, 70, 60),
    "green": (40, 190, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "white": (240, 240, 240),
}
BACKGROUND = (40, 40, 48)
COLOUR_JITTER = 12  # +- per channel, so no two images of a class are the same picture
MIN_HALF, MAX_HALF = 11, 19
OUTLINE_WIDTH = 3.0  # pixels, the outlined style's stroke
_SUPER = 4  # supersampling per axis
_COORDS = (torch.arange(SIZE * _SUPER, dtype=torch.float32) + 0.5) / _SUPER
_GRID = torch.meshgrid(_COORDS, _COORDS, indexing="ij")  # (y, x) of every subpixel centre


@dataclass(frozen=True)
class ShapesData:
    """``images`` uint8 ``[N, 64, 64, 3]``; ``captions`` N strings; ``labels`` per attribute, int64 ``[N]``."""

    images: np.ndarray
    captions: list[str]
    labels: dict[str, np.ndarray]


def caption(colour: int, shape: int) -> str:
    """The caption of an image with these label numbers, e.g. ``caption(0, 0) == "a red circle"``."""
    return f"a {COLOURS[colour]} {SHAPES[shape]}"


def all_captions() -> list[str]:
    """Every caption the grammar makes, in label order (colour major): 20 prompts."""
    return [caption(c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES))]


def parse_caption(text: str) -> dict[str, int]:
    """The label numbers a caption asks for; ``ValueError`` naming the grammar if it is not one of ours."""
    words = text.strip().lower().split()
    if len(words) == 3 and words[0] == "a" and words[1] in COLOURS and words[2] in SHAPES:
        return {"colour": COLOURS.index(words[1]), "shape": SHAPES.index(words[2])}
    raise ValueError(f"{text!r} is not a shapes caption: expected 'a {{colour}} {{shape}}' with colour in "
                     f"{COLOURS} and shape in {SHAPES}")


def _shape_mask(shape: str, cx: float, cy: float, half: float, grid: tuple[torch.Tensor, torch.Tensor]
                ) -> torch.Tensor:
    """Boolean coverage of one filled shape on the supersampled grid (coordinates in pixels)."""
    y, x = grid
    dx, dy = x - cx, y - cy
    if shape == "circle":
        return dx * dx + dy * dy <= half * half
    if shape == "square":
        return (dx.abs() <= half) & (dy.abs() <= half)
    if shape == "triangle":  # apex up, base at the bottom, equal sides
        inside_y = (dy >= -half) & (dy <= half)
        slope = (dy + half) / (2 * half)  # 0 at the apex, 1 at the base
        return inside_y & (dx.abs() <= slope * half * 1.1547)
    if shape == "cross":
        arm = half / 2
        return ((dx.abs() <= half) & (dy.abs() <= arm)) | ((dx.abs() <= arm) & (dy.abs() <= half))
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _outline(mask: torch.Tensor) -> torch.Tensor:
    """The shape's border ``OUTLINE_WIDTH`` pixels wide: the mask minus its erosion."""
    radius = int(OUTLINE_WIDTH * _SUPER)
    m = mask[None, None].float()
    # A square window's minimum is separable: a row pass then a column pass give the same mask as one
    # (2r+1)x(2r+1) pool at a tenth of the cost.
    eroded = -F.max_pool2d(-m, (1, 2 * radius + 1), stride=1, padding=(0, radius))
    eroded = -F.max_pool2d(-eroded, (2 * radius + 1, 1), stride=1, padding=(radius, 0))
    return (m - eroded)[0, 0] > 0.5


def render(colour: int, shape: int, cx: float, cy: float, half: float, rgb: tuple[float, float, float],
           style: str = "filled") -> torch.Tensor:
    """One image, float ``[64, 64, 3]`` in 0..255 (before rounding)."""
    mask = _shape_mask(SHAPES[shape], cx, cy, half, _GRID)
    if style == "outlined":
        mask = _outline(mask)
    elif style != "filled":
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    cover = F.avg_pool2d(mask[None, None].float(), _SUPER)[0, 0, :, :, None]  # [64, 64, 1] in 0..1
    bg = torch.tensor(BACKGROUND, dtype=torch.float32)
    fg = torch.tensor(rgb, dtype=torch.float32)
    return bg + cover * (fg - bg)


def make_shapes(n: int, seed: int = 0, style: str = "filled") -> ShapesData:
    """``n`` image-caption pairs drawn from ``seed``; classes are balanced (cycled, then shuffled).

    :param style: ``"filled"`` (the base model's data) or ``"outlined"`` (the LoRA's).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    g = torch.Generator().manual_seed(seed)
    classes = len(COLOURS) * len(SHAPES)
    order = torch.arange(n) % classes
    order = order[torch.randperm(n, generator=g)]
    colours, shapes = (order // len(SHAPES)).tolist(), (order % len(SHAPES)).tolist()
    halves = torch.randint(MIN_HALF, MAX_HALF + 1, (n,), generator=g).float()
    # The centre may be anywhere the whole shape fits, with a 2-pixel margin.
    room = SIZE - 2 * (halves + 2)
    cxs = halves + 2 + torch.rand(n, generator=g) * room
    cys = halves + 2 + torch.rand(n, generator=g) * room
    jitter = torch.randint(-COLOUR_JITTER, COLOUR_JITTER + 1, (n, 3), generator=g).float()
    images = torch.empty(n, SIZE, SIZE, 3, dtype=torch.uint8)
    for i in range(n):
        rgb = (torch.tensor(COLOUR_RGB[COLOURS[colours[i]]], dtype=torch.float32) + jitter[i]).clamp(0, 255)
        img = render(colours[i], shapes[i], float(cxs[i]), float(cys[i]), float(halves[i]), tuple(rgb.tolist()),
                     style)
        images[i] = img.round().clamp(0, 255).to(torch.uint8)
    return ShapesData(
        images=images.numpy(),
        captions=[caption(c, s) for c, s in zip(colours, shapes, strict=True)],
        labels={"colour": np.asarray(colours, dtype=np.int64), "shape": np.asarray(shapes, dtype=np.int64)},
    )


def fill_ratio(images: np.ndarray | torch.Tensor, threshold: float = 60.0) -> np.ndarray:
    """The outlined-style statistic, per image: foreground pixels / area of their bounding box.

    A pixel is foreground when its RGB distance from :data:`BACKGROUND` exceeds ``threshold`` (0..255 scale).
    Filled shapes score 0.50-0.56 (triangle), 0.73-0.81 (circle, cross), 0.99-1.0 (square); outlined ones
    0.27-0.57, always below the filled value of the same shape (compare per shape, or the means of a batch of the
    same prompts and seeds with and without the LoRA). An image without foreground scores 0. ``images``: uint8 or float 0..255, ``[N, 64, 64, 3]``.
    """
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images [N, H, W, 3], got shape {tuple(x.shape)}")
    fg = (x - torch.tensor(BACKGROUND, dtype=torch.float32)).norm(dim=-1) > threshold  # [N, H, W]
    out = np.zeros(x.shape[0])
    for i, m in enumerate(fg):
        ys, xs = torch.nonzero(m, as_tuple=True)
        if len(ys):
            box = (int(ys.max()) - int(ys.min()) + 1) * (int(xs.max()) - int(xs.min()) + 1)
            out[i] = float(m.sum()) / box
    return out
