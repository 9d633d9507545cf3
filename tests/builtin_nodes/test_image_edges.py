"""Canny and Morphology against independent numpy implementations of kornia's algorithms (the ones ComfyUI runs)."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_edges import MORPHOLOGY_OPERATIONS, Canny, Morphology
from hearth.core.context import Folders

# Direction k (k * 45 degrees, x right, y down) points at this neighbour (dy, dx).
STEPS = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1), 4: (0, -1), 5: (-1, -1), 6: (-1, 0), 7: (-1, 1)}


def reference_canny(rgb: np.ndarray, low: float, high: float) -> np.ndarray:
    """Canny as kornia defines it, written plainly in float64 numpy: one ``[H, W, 3]`` image -> 0/1 edges."""
    gray = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    taps = np.exp(-(np.arange(5) - 2.0) ** 2 / 2.0)
    taps /= taps.sum()
    padded = np.pad(gray, 2, mode="reflect")
    rows = sum(taps[i] * padded[:, i:i + gray.shape[1]] for i in range(5))
    blurred = sum(taps[i] * rows[i:i + gray.shape[0], :] for i in range(5))
    edge = np.pad(blurred, 1, mode="edge")
    height, width = gray.shape

    def at(dy: int, dx: int) -> np.ndarray:
        return edge[1 + dy:1 + dy + height, 1 + dx:1 + dx + width]

    gx = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
    gy = (at(1, -1) + 2 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1))
    magnitude = np.sqrt(gx * gx + gy * gy + 1e-6)
    direction = np.round(np.degrees(np.arctan2(gy, gx)) / 45).astype(int) % 8
    kept = np.zeros_like(magnitude)
    for y in range(height):
        for x in range(width):
            neighbours = []
            for k in (direction[y, x], (direction[y, x] + 4) % 8):
                ny, nx = y + STEPS[k][0], x + STEPS[k][1]
                neighbours.append(magnitude[ny, nx] if 0 <= ny < height and 0 <= nx < width else 0.0)
            if magnitude[y, x] > max(neighbours):
                kept[y, x] = magnitude[y, x]
    weak, strong = kept > low, kept > high
    edges = np.zeros_like(strong)
    queue = deque(zip(*np.nonzero(strong), strict=True))
    while queue:
        y, x = queue.popleft()
        if edges[y, x]:
            continue
        edges[y, x] = True
        for dy, dx in STEPS.values():
            ny, nx = y + dy, x + dx
            if 0 <= ny < height and 0 <= nx < width and weak[ny, nx] and not edges[ny, nx]:
                queue.append((ny, nx))
    return edges.astype(np.float32)


def blobs(height: int = 24, width: int = 20, batch: int = 2) -> torch.Tensor:
    """Smooth shapes with soft edges, so thresholds fall between gradient levels rather than on them."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    frames = []
    for b in range(batch):
        disc = torch.sigmoid(6.0 - torch.sqrt((ys - 9 - b) ** 2 + (xs - 8) ** 2))
        bar = torch.sigmoid(2.0 * (xs - 13 - b)) * 0.6
        frames.append(torch.stack([disc, bar, disc * 0.5 + bar], dim=-1))
    return torch.stack(frames)


@pytest.mark.parametrize(("low", "high"), [(0.1, 0.3), (0.05, 0.6), (0.4, 0.8)])
def test_canny_matches_the_numpy_reference(low: float, high: float) -> None:
    images = blobs()
    (out,) = Canny().detect_edge(images, low, high)
    assert out.shape == (2, 24, 20, 3) and torch.equal(out[..., 0], out[..., 2])
    for b in range(2):
        expected = reference_canny(images[b].numpy().astype(np.float64), low, high)
        np.testing.assert_array_equal(out[b, ..., 0].numpy(), expected)
    assert float(out.sum()) > 0


def test_canny_hysteresis_keeps_weak_edges_only_when_joined_to_strong_ones() -> None:
    image = torch.zeros(1, 24, 32, 3)
    image[:, 12:] = torch.linspace(1.0, 0.1, 32)[:, None]  # one edge, fading from strong to weak along x
    image[:, :5, 20:] = 0.15  # a faint block on its own, as weak as the fading edge's end
    (out,) = Canny().detect_edge(image, 0.1, 0.7)
    # The whole fading edge stays, its weak end carried by the strong start; the lone faint block goes.
    assert torch.all(out[0, 12, :, 0] == 1.0)
    assert float(out[0, :8, :, 0].sum()) == 0.0
    (faint_alone,) = Canny().detect_edge(image[:, :8], 0.1, 0.7)
    assert float(faint_alone.sum()) == 0.0
    (faint_strong,) = Canny().detect_edge(image[:, :8], 0.05, 0.1)
    assert float(faint_strong.sum()) > 0.0


def test_canny_ignores_alpha_and_refuses_crossed_thresholds() -> None:
    rgba = torch.cat([blobs(batch=1), torch.zeros(1, 24, 20, 1)], dim=-1)
    assert torch.equal(Canny().detect_edge(rgba, 0.1, 0.3)[0], Canny().detect_edge(rgba[..., :3], 0.1, 0.3)[0])
    with pytest.raises(ValueError, match="low_threshold: 0.9 is above high_threshold 0.2"):
        Canny().detect_edge(rgba, 0.9, 0.2)


def reference_window(image: np.ndarray, size: int, largest: bool) -> np.ndarray:
    """Max/min over rows y - size//2 .. y - size//2 + size - 1 (columns likewise), outside ignored."""
    before = size // 2
    height, width = image.shape[1:3]
    out = np.empty_like(image)
    for y in range(height):
        for x in range(width):
            window = image[:, max(0, y - before):y - before + size, max(0, x - before):x - before + size]
            out[:, y, x] = window.max(axis=(1, 2)) if largest else window.min(axis=(1, 2))
    return out


def reference_morphology(image: np.ndarray, operation: str, size: int) -> np.ndarray:
    def dilate(x: np.ndarray) -> np.ndarray:
        return reference_window(x, size, True)

    def erode(x: np.ndarray) -> np.ndarray:
        return reference_window(x, size, False)

    return {"erode": lambda: erode(image), "dilate": lambda: dilate(image),
            "open": lambda: dilate(erode(image)), "close": lambda: erode(dilate(image)),
            "gradient": lambda: dilate(image) - erode(image), "top_hat": lambda: image - dilate(erode(image)),
            "bottom_hat": lambda: erode(dilate(image)) - image}[operation]()


@pytest.mark.parametrize("operation", MORPHOLOGY_OPERATIONS)
@pytest.mark.parametrize("size", [3, 4, 7])
def test_morphology_matches_the_numpy_reference(operation: str, size: int) -> None:
    image = torch.rand(2, 9, 11, 3, generator=torch.Generator().manual_seed(size))
    (out,) = Morphology().process(image, operation, size)
    np.testing.assert_allclose(out.numpy(), reference_morphology(image.numpy(), operation, size), atol=1e-7)


def test_morphology_dilates_a_dot_into_a_square() -> None:
    image = torch.zeros(1, 7, 7, 3)
    image[0, 3, 3] = 1.0
    (out,) = Morphology().process(image, "dilate", 3)
    expected = torch.zeros(7, 7)
    expected[2:5, 2:5] = 1.0
    assert torch.equal(out[0, ..., 1], expected)
    with pytest.raises(ValueError, match="operation: 'blur' is not one of"):
        Morphology().process(image, "blur", 3)


def test_canny_and_morphology_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImagePadForOutpaint", "inputs": {"image": ["1", 0], "left": 8, "top": 0, "right": 0,
                                                              "bottom": 0, "feathering": 0}},
        "3": {"class_type": "Canny", "inputs": {"image": ["2", 0], "low_threshold": 0.2, "high_threshold": 0.4}},
        "4": {"class_type": "Morphology", "inputs": {"image": ["3", 0], "operation": "dilate", "kernel_size": 3}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "edges"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["5"]["images"]
    with Image.open(hearth_folders.output / item["filename"]) as png:
        pixels = np.asarray(png)[..., 0]
    # Grey padding on the left meets black at column 8: one vertical edge line, thickened by the dilation.
    assert pixels.shape == (16, 24)
    assert set(np.unique(pixels)) == {0, 255}
    columns = np.nonzero(pixels.max(axis=0))[0]
    assert 5 <= columns.min() and columns.max() <= 10
