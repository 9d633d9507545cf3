"""The MODEL and MOTION_MODEL values of AnimateDiff: an SD model whose UNet runs its frames through a motion model.

:class:`AnimateDiffModel` wraps any SD MODEL value (docs/data-types.md) and changes two things: ``prepare`` makes
the motion model resident with the UNet (one request to the model manager, so neither evicts the other), and
``denoise`` runs the SD model's own ``denoise`` with the motion model switched on for its UNet
(:mod:`hearth_video.animatediff_inject`), cutting the clip into context windows when asked. Everything else —
``clone``, ``patcher`` (LoRA patches the UNet as usual), ``sampling``, ``model_options`` — is the SD model's.

The frames of a clip are the latent batch, as in ComfyUI: a LATENT of ``[16, 4, h, w]`` is 16 frames. The
sampler hands ``process_latent_in`` the whole clip before it samples (and ``process_latent_out`` the result after),
which is where the clip's length is read; ``denoise`` then gets the clip once per prompt it batches (positive,
negative), one after the other. Called outside a sampler, ``denoise`` takes its whole batch as one clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hearth.core.models import Loaded, PatchedModel, default_device, default_manager

from .animatediff_context import ContextOptions, denoise_in_windows
from .animatediff_inject import check_fits, motion_enabled
from .animatediff_module import NORMS, MotionModel

FAMILIES = ("sd1",)  # the SD model families the v1/v2/v3 motion modules were trained on
_OWN = frozenset({"inner", "motion", "scale", "context", "norm", "frames"})


class MotionModelFile(Loaded):
    """MOTION_MODEL: a loaded motion module file and the ``PatchedModel`` that owns its weights.

    It is its own load-cache record (:func:`hearth.core.models.load_once`): node outputs hold it, the cache weakly.
    """

    def __init__(self, model: MotionModel, path: Path, load_device: str | torch.device | None = None) -> None:
        super().__init__(path)
        self.model = model
        self.patcher = PatchedModel(model, name=self.path.name, load_device=load_device or default_device(),
                                    memory_estimate=self.memory_required)

    @property
    def name(self) -> str:
        return self.path.name

    def memory_required(self, input_shape: tuple[int, ...] | None, dtype: torch.dtype | None = None) -> int:
        """Bytes the motion modules add to a forward of a ``[B, C, h, w]`` batch: at the widest level, the
        feed-forward's 8x-wide activation and a few sequences of width C (attention over frames is tiny)."""
        if input_shape is None:
            return 0
        b, _, h, w = input_shape
        size = torch.finfo(dtype or torch.float16).bits // 8
        channels = self.model.config.channels[0]
        return int(1.5 * b * h * w * channels * 12 * size)

    def memory_bytes(self) -> int:
        return self.patcher.memory_bytes()

    def __repr__(self) -> str:
        return f"<MotionModelFile {self.name!r} {self.model.config.describe()}>"


def _compute_dtype(module: torch.nn.Module) -> torch.dtype:
    found = getattr(module, "compute_dtype", None)
    if found is not None:
        return found
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


class AnimateDiffModel:
    """MODEL: ``inner`` (an SD MODEL) with ``motion`` on its UNet at ``scale``, optionally in context windows."""

    def __init__(self, inner: Any, motion: MotionModelFile, scale: float = 1.0,
                 context: ContextOptions | None = None, norm: str = "frame") -> None:
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        family = getattr(inner, "family", "sd1")
        if family not in FAMILIES:
            raise ValueError(f"motion model {motion.name} ({motion.model.config.describe()}) is made for SD1.x "
                             f"models; this MODEL is {family}: load an SD1.x checkpoint")
        check_fits(motion.model, inner.patcher.module, f"motion model {motion.name}")
        self.inner = inner
        self.motion = motion
        self.scale = float(scale)
        self.context = context
        self.norm = norm
        self.frames: int | None = None  # the clip length of the sampling in progress (process_latent_in)

    def __getattr__(self, name: str) -> Any:
        # Everything not defined here is the SD model's (the MODEL protocol and whatever else it offers).
        if name.startswith("__") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # A custom node that sets model.model_options (or another attribute of the SD model) sets the SD model's.
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    def clone(self) -> AnimateDiffModel:
        return AnimateDiffModel(self.inner.clone(), self.motion, self.scale, self.context, self.norm)

    def memory_bytes(self) -> int:
        return self.inner.memory_bytes() + self.motion.memory_bytes()

    def _patchers(self) -> list[PatchedModel]:
        return [self.inner.patcher, self.motion.patcher]

    def prepare(self, batch_shape: tuple[int, ...]) -> torch.device:
        """The UNet and the motion model resident together for a batch of ``batch_shape``; the compute device."""
        # Context windows never batch more frames per call than the whole clip: the same estimate holds.
        default_manager().load(self._patchers(), input_shape=tuple(batch_shape),
                               dtype=_compute_dtype(self.inner.patcher.module))
        return self.inner.patcher.load_device

    def _ready(self) -> bool:
        return default_manager().is_ready(self._patchers())

    def process_latent_in(self, raw: torch.Tensor) -> torch.Tensor:
        self.frames = int(raw.shape[0])  # a sampler starts: this is its clip
        return self.inner.process_latent_in(raw)

    def process_latent_out(self, scaled: torch.Tensor) -> torch.Tensor:
        self.frames = None  # the sampler is done; a direct denoise call takes its batch as one clip
        return self.inner.process_latent_out(scaled)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                options: dict[str, Any] | None = None) -> torch.Tensor:
        """The SD model's denoise with the motion model on; ``x`` is one or more clips of :attr:`frames` frames."""
        options = dict(options or {})
        frames = self.frames or x.shape[0]
        if x.shape[0] % frames:
            raise ValueError(f"AnimateDiff: a batch of {x.shape[0]} latents is not a whole number of {frames}-frame "
                             f"clips; sample the clip's latent batch as one LATENT")
        if not self._ready():
            self.prepare(tuple(x.shape))
        unet = self.inner.patcher.module
        motion = self.motion.model

        def evaluate(x_in: torch.Tensor, sigma_in: torch.Tensor, cond_in: torch.Tensor, opts: dict[str, Any],
                     window: int) -> torch.Tensor:
            with motion_enabled(unet, motion, window, norm=self.norm, scale=self.scale):
                return self.inner.denoise(x_in, sigma_in, cond_in, opts)

        if self.context is None or frames <= self.context.context_length:
            return evaluate(x, sigma, cond, options, frames)
        return denoise_in_windows(evaluate, x, sigma, cond, options, frames, self.context)

    def __repr__(self) -> str:
        windows = "" if self.context is None else f", windows of {self.context.context_length}"
        return f"<AnimateDiffModel {self.inner!r} + {self.motion.name!r} scale {self.scale}{windows}>"
