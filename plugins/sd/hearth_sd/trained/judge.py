"""The judge: a small CNN, trained on the shapes data set alone, that says which colour and shape a picture shows.

It is what makes the quality check able to fail: it scores a generated picture against the prompt it was made
from (``"a red circle"`` asks for colour red and shape circle, :func:`~.shapes.parse_caption`). Pictures of the data
set itself are classified right at least 97% of the time per attribute (:func:`held_out_accuracy`, on seeds the
judge never saw); noise, or a model that ignores its prompt, scores at chance (1/5 for colour, 1/4 for shape, 1/20
for both).

Training is deterministic (a fixed seed for the data, the weights and every batch, one thread) and takes seconds on
a CPU, so tests train it rather than ship weights. It learns from both styles (filled and outlined, so a LoRA's
pictures are judged too) and from lightly degraded copies (blur, noise, a small colour shift): a generated picture
is a little soft and noisy, and the judge should judge its content, not its sharpness.

The LoRA's style statistic is the data set's own :func:`~.shapes.fill_ratio` (re-exported as
:func:`style_statistic`): foreground pixels over their bounding box, lower for outlined shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .shapes import ATTRIBUTES, BACKGROUND, SIZE, STYLES, fill_ratio, make_shapes, parse_caption

TRAIN_SEED = 1  # the diffusion model trains on seed 0; the judge learns from other pictures
HELD_OUT_SEED = 2
TRAIN_IMAGES = 500  # per style
TRAIN_STEPS = 500
BATCH = 32
NET_SIZE = SIZE // 2  # the net sees 32x32 pictures: the smallest shape is still 11 pixels wide there


def style_statistic(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """The LoRA's style statistic per picture (:func:`~.shapes.fill_ratio`); ``images`` as :meth:`Judge.predict`."""
    return fill_ratio(_to_uint8_scale(images))


def _to_uint8_scale(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Pictures as float ``[N, 64, 64, 3]`` on the 0..255 scale, checked.

    uint8 arrays are on 0..255 (the data set's); float ones on 0..1 (a decoded IMAGE, as VAEDecode returns).
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.ndim != 4 or tuple(x.shape[1:]) != (SIZE, SIZE, 3):
        raise ValueError(f"the judge takes pictures [N, {SIZE}, {SIZE}, 3] (64x64 RGB, e.g. a 64x64 "
                         f"EmptyLatentImage decoded), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float()
    if not x.is_floating_point():
        raise ValueError(f"the judge takes uint8 (0..255) or float (0..1) pictures, got {x.dtype}")
    return x.detach().float().cpu().clamp(0.0, 1.0) * 255.0


class JudgeNet(nn.Module):
    """Four 3x3 conv stages with batch norm (32 -> 2 pixels), global max and mean pooling, one linear head per attribute."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        chans = [3, width, width, 2 * width, 2 * width]
        self.features = nn.Sequential(*[
            layer for a, b in zip(chans, chans[1:], strict=False)
            for layer in (nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2))
        ])
        self.heads = nn.ModuleDict({name: nn.Linear(4 * width, len(labels)) for name, labels in ATTRIBUTES.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per attribute for ``x`` ``[N, 3, 32, 32]`` (pixels minus the background, on 0..1)."""
        h = self.features(x)
        pooled = torch.cat([h.amax(dim=(2, 3)), h.mean(dim=(2, 3))], dim=1)
        return {name: head(pooled) for name, head in self.heads.items()}


def _net_input(x255: torch.Tensor) -> torch.Tensor:
    """``[N, 64, 64, 3]`` on 0..255 to the net's ``[N, 3, 32, 32]`` (2x2 means): the background maps to 0."""
    bg = torch.tensor(BACKGROUND, dtype=torch.float32)
    return F.avg_pool2d(((x255 - bg) / 255.0).permute(0, 3, 1, 2), 2)


def _degrade(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Randomly soften, shift and add noise to a batch (net input layout), as a generated picture may be."""
    n = x.shape[0]
    sigma = torch.rand(n, generator=g) * 0.8  # blur radius in net pixels, 0 (sharp) .. 0.8 (1.6 picture pixels)
    offsets = torch.arange(-3, 4, dtype=torch.float32)
    kernel = torch.exp(-offsets[None] ** 2 / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # [N, 7], separable
    c = x.shape[1]
    k = kernel.repeat_interleave(c, dim=0)  # one kernel per picture and channel
    flat = x.reshape(1, n * c, NET_SIZE, NET_SIZE)
    flat = F.conv2d(F.pad(flat, (3, 3, 0, 0), mode="replicate"), k[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, 3, 3), mode="replicate"), k[:, None, :, None], groups=n * c)
    x = flat.reshape(n, c, NET_SIZE, NET_SIZE)
    x = x + (torch.rand(n, c, 1, 1, generator=g) - 0.5) * 0.12  # colour shift, up to +-0.06 per channel
    return x + torch.randn(x.shape, generator=g) * torch.rand(n, 1, 1, 1, generator=g) * 0.06


@dataclass(frozen=True)
class Score:
    """How often pictures show what their prompts ask: per attribute and for all attributes at once (0..1)."""

    per_attribute: dict[str, float]
    both: float
    count: int

    def line(self) -> str:
        """One line for a table: ``both 95.0%  colour 100.0%  shape 95.0%  (n=20)``."""
        parts = [f"both {self.both:6.1%}"] + [f"{k} {v:6.1%}" for k, v in self.per_attribute.items()]
        return "  ".join(parts) + f"  (n={self.count})"


def _wanted(images: np.ndarray | torch.Tensor, captions: Sequence[str]) -> list[dict[str, int]]:
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} pictures but {len(captions)} captions: give one caption per picture")
    return [parse_caption(c) for c in captions]


class Judge:
    """A trained :class:`JudgeNet` with the calls the quality checks make."""

    def __init__(self, net: JudgeNet) -> None:
        self.net = net.eval()

    @torch.no_grad()
    def predict(self, images: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
        """The label number per attribute of each picture.

        :param images: ``[N, 64, 64, 3]``, uint8 on 0..255 or float on 0..1 (a decoded IMAGE).
        """
        x = _net_input(_to_uint8_scale(images))
        out: dict[str, list[np.ndarray]] = {name: [] for name in ATTRIBUTES}
        for start in range(0, x.shape[0], 256):
            logits = self.net(x[start:start + 256])
            for name in ATTRIBUTES:
                out[name].append(logits[name].argmax(dim=1).numpy())
        return {name: np.concatenate(parts) for name, parts in out.items()}

    def score(self, images: np.ndarray | torch.Tensor, captions: Sequence[str]) -> Score:
        """How often ``images[i]`` shows what ``captions[i]`` asks (captions in the data set's grammar)."""
        wanted = _wanted(images, captions)
        return self.score_labels(images, {name: np.asarray([w[name] for w in wanted]) for name in ATTRIBUTES})

    @torch.no_grad()
    def confidence(self, images: np.ndarray | torch.Tensor, captions: Sequence[str]) -> float:
        """The mean probability the judge gives each picture of showing everything its caption asks (the product
        over attributes): a finer measure of prompt following than :meth:`score`'s right-or-wrong count."""
        wanted = _wanted(images, captions)
        x = _net_input(_to_uint8_scale(images))
        p = torch.ones(len(wanted))
        for start in range(0, x.shape[0], 256):
            logits, chunk = self.net(x[start:start + 256]), slice(start, start + 256)
            for name in ATTRIBUTES:
                asked = torch.tensor([w[name] for w in wanted[chunk]])
                p[chunk] *= torch.softmax(logits[name], dim=1)[torch.arange(len(asked)), asked]
        return float(p.mean())

    def score_labels(self, images: np.ndarray | torch.Tensor, labels: dict[str, np.ndarray]) -> Score:
        """As :meth:`score`, with the wanted label numbers per attribute instead of captions."""
        got = self.predict(images)
        right = {name: got[name] == np.asarray(labels[name]) for name in ATTRIBUTES}
        both = np.logical_and.reduce(list(right.values()))
        return Score({name: float(r.mean()) for name, r in right.items()}, float(both.mean()), len(both))


def train_judge(seed: int = TRAIN_SEED, images_per_style: int = TRAIN_IMAGES, steps: int = TRAIN_STEPS,
                log: Callable[[str], None] | None = None) -> Judge:
    """A judge trained on ``make_shapes(images_per_style, seed, style)`` for both styles; the same bytes every time.

    :param log: called with a line every 100 steps (the loss), if given.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order on every machine, and no oversubscription
    try:
        data = [make_shapes(images_per_style, seed=seed + 1000 * k, style=style) for k, style in enumerate(STYLES)]
        x = torch.cat([_net_input(torch.from_numpy(d.images).float()) for d in data])
        labels = {name: torch.cat([torch.from_numpy(d.labels[name]) for d in data]) for name in ATTRIBUTES}
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        net = JudgeNet()
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
        net.train()
        for step in range(steps):
            idx = torch.randint(0, x.shape[0], (BATCH,), generator=g)
            logits = net(_degrade(x[idx], g))
            loss = sum(F.cross_entropy(logits[name], labels[name][idx]) for name in ATTRIBUTES)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if log is not None and (step + 1) % 100 == 0:
                log(f"judge step {step + 1}/{steps}: loss {loss.item():.4f}")
        return Judge(net)
    finally:
        torch.set_num_threads(threads)


def held_out_accuracy(judge: Judge, images_per_style: int = 200, seed: int = HELD_OUT_SEED) -> dict[str, Score]:
    """The judge's score per style on data-set pictures it never saw (``seed`` differs from the training seeds)."""
    out = {}
    for k, style in enumerate(STYLES):
        data = make_shapes(images_per_style, seed=seed + 1000 * k, style=style)
        out[style] = judge.score_labels(data.images, data.labels)
    return out
