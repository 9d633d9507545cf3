"""ComfyUI's ``latent_preview`` module: the sampling callback that reports progress and previews, and previewers.

``prepare_callback(model, steps)`` gives the callback a pack passes to a sampler; each step it sends a Hearth
``progress`` event for the running node with a small preview of the current clean estimate (the sampling
engine's latent-to-RGB map), and stops the sampler when the user interrupts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_PREVIEW_RESOLUTION = 512


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


def get_previewer(device: Any, latent_format: Any) -> LatentPreviewer:
    """The previewer for latents of ``latent_format`` (an SD MODEL's ``model.latent_format``)."""
    from hearth_comfy_compat.comfy_samplers import _sampling

    _sampling()
    return LatentPreviewer(str(getattr(latent_format, "family", "") or ""))
