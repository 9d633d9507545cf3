"""ComfyUI's ``latent_preview`` module: the sampling callback that reports progress and previews, and previewers.

``prepare_callback(model, steps)`` gives the callback a pack passes to a sampler; each step it sends a Hearth
``progress`` event for the running node with a small preview of the current clean estimate (the sampling
engine's latent-to-RGB map), and stops the sampler when the user interrupts.

A pack's own previewers work as in ComfyUI: :class:`Latent2RGBPreviewer` (a latent-to-RGB matrix),
:class:`TAESDPreviewerImpl` (any decoder with ``decode``), and :func:`preview_to_image`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# ComfyUI's latent_preview imports these from comfy.cli_args; packs read them here (efficiency-nodes sets
# args.preview_method = latent_preview.LatentPreviewMethod.Latent2RGB).
from hearth_comfy_compat.cli_args import LatentPreviewMethod, args

MAX_PREVIEW_RESOLUTION = 512


def __getattr__(name: str) -> Any:
    # ComfyUI's latent_preview imports TAESD from comfy.taesd.taesd; packs take it from here.
    if name == "TAESD":
        from hearth_comfy_compat.comfyui.comfy.taesd.taesd import TAESD

        return TAESD
    raise AttributeError(name)


def _args() -> Any:
    return args


default_preview_method = _args().preview_method


def set_preview_method(override: str | None = None) -> None:
    """Set the preview method for sampler nodes (``"auto"``, ``"latent2rgb"``, ``"taesd"``, ``"none"``); None or
    ``"default"`` restores the default."""
    _args().preview_method = (default_preview_method if override in (None, "default")
                              else LatentPreviewMethod(override))


def preview_to_image(preview_image: Any) -> Any:
    """A ``[height, width, 3]`` tensor in -1..1 as a PIL image."""
    import torch
    from PIL import Image

    pixels = ((preview_image.detach().float().cpu().clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    return Image.fromarray(pixels.to(dtype=torch.uint8).numpy())


def prepare_callback(model: Any, steps: int, x0_output_dict: dict[str, Any] | None = None) -> Callable[..., None]:
    """A sampler callback ``(step, x0, x, total_steps)`` feeding the node's progress bar and preview; with
    ``x0_output_dict`` it also keeps the latest clean estimate under ``"x0"``."""
    from hearth_comfy_compat.comfy_samplers import _sampling

    if getattr(type(model), "HEARTH_LENT", False):
        # In a pack host, with a model Hearth's process samples: report progress and keep x0 here (the preview
        # colours come from the model, which stays there).
        from hearth.core import context

        def step(index: int, x0: Any, x: Any, total_steps: int) -> None:
            if x0_output_dict is not None:
                x0_output_dict["x0"] = x0
            context.progress(index + 1, total_steps)

        return step
    return _sampling().progress_callback(model, x0_output_dict)


class LatentPreviewer:
    """Turns a latent batch into a preview image: ``decode_latent_to_preview_image(format, x0)``."""

    def __init__(self, family: str = "") -> None:
        self.family = family

    def decode_latent_to_preview(self, x0: Any) -> Any:
        """The first latent of ``x0`` as a PIL image, or None for a latent this previewer cannot colour."""
        from hearth_comfy_compat.comfy_samplers import _sampling

        found = _sampling().progress_preview(x0, self.family)
        return None if found is None else found[1]

    def decode_latent_to_preview_image(self, preview_format: str, x0: Any) -> tuple[str, Any, int] | None:
        image = self.decode_latent_to_preview(x0)
        return None if image is None else (preview_format, image, MAX_PREVIEW_RESOLUTION)


class TAESDPreviewerImpl(LatentPreviewer):
    """Previews through a small decoder (``taesd.decode(latent) -> [batch, 3, h, w]`` in -1..1)."""

    def __init__(self, taesd: Any) -> None:
        super().__init__()
        self.taesd = taesd

    def decode_latent_to_preview(self, x0: Any) -> Any:
        return preview_to_image(self.taesd.decode(x0[:1])[0].movedim(0, 2))


class Latent2RGBPreviewer(LatentPreviewer):
    """Previews by mapping each latent channel to RGB with a ``[channels][3]`` matrix (and an RGB bias)."""

    def __init__(self, latent_rgb_factors: Any, latent_rgb_factors_bias: Any = None) -> None:
        import torch

        super().__init__()
        self.latent_rgb_factors = torch.tensor(latent_rgb_factors, device="cpu").transpose(0, 1)
        self.latent_rgb_factors_bias = (None if latent_rgb_factors_bias is None
                                        else torch.tensor(latent_rgb_factors_bias, device="cpu"))

    def decode_latent_to_preview(self, x0: Any) -> Any:
        import torch

        latent = x0[0, :, 0] if x0.ndim == 5 else x0[0]  # video latents: the first frame
        factors = self.latent_rgb_factors.to(dtype=latent.dtype, device=latent.device)
        bias = (None if self.latent_rgb_factors_bias is None
                else self.latent_rgb_factors_bias.to(dtype=latent.dtype, device=latent.device))
        return preview_to_image(torch.nn.functional.linear(latent.movedim(0, -1), factors, bias=bias))


def get_previewer(device: Any, latent_format: Any) -> LatentPreviewer:
    """The previewer for latents of ``latent_format`` (an SD MODEL's ``model.latent_format``)."""
    from hearth_comfy_compat.comfy_samplers import _sampling

    _sampling()
    return LatentPreviewer(str(getattr(latent_format, "family", "") or ""))
