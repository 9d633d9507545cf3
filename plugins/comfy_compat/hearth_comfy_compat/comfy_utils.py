"""ComfyUI's ``comfy.utils`` module: progress bars feeding Hearth's progress events, checkpoint IO, resizing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hearth.core import context
from hearth.core import images as imaging

PROGRESS_BAR_ENABLED = True


class ProgressBar:
    """Progress of the node that made it, reported as Hearth ``progress`` events (and checked for interrupts).

    The node's context is taken when the bar is made, so a pack that updates the bar from a worker thread still
    reports against its node.
    """

    def __init__(self, total: int, node_id: Any = None) -> None:
        self.total = total
        self.current = 0
        self.node_id = node_id
        self._context = context.current()

    def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
        if total is not None:
            self.total = total
        self.current = min(value, self.total)
        if not PROGRESS_BAR_ENABLED:
            return
        if self._context is not None:
            self._context.progress(self.current, self.total, preview)
        else:
            context.progress(self.current, self.total, preview)

    def update(self, value: int) -> None:
        self.update_absolute(self.current + value)


def load_torch_file(ckpt: str, safe_load: bool = False, device: Any = None,
                    return_metadata: bool = False) -> Any:
    """A checkpoint's tensors through Hearth's loader (safetensors memory-mapped; pickles loaded weights-only,
    whatever ``safe_load`` says)."""
    from hearth.core.models.loading import load_state_dict, read_header

    state = load_state_dict(ckpt, device=device)
    if return_metadata:
        return state, dict(read_header(ckpt).metadata) or None
    return state


def save_torch_file(sd: Mapping[str, torch.Tensor], ckpt: str, metadata: Mapping[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    from hearth.core.context import atomic_path

    with atomic_path(ckpt) as temp:  # a kill mid-write must not leave a truncated checkpoint under its name
        save_file({k: v.contiguous() for k, v in sd.items()}, str(temp), metadata=dict(metadata) if metadata else None)


def state_dict_prefix_replace(state_dict: dict[str, Any], replace_prefix: Mapping[str, str],
                              filter_keys: bool = False) -> dict[str, Any]:
    """Rename keys starting with each old prefix to start with its new one. The renamed keys move out of
    ``state_dict``; the result is ``state_dict`` itself, or with ``filter_keys`` a new dict of only those keys."""
    out = {} if filter_keys else state_dict
    for old, new in replace_prefix.items():
        for key in [k for k in state_dict if k.startswith(old)]:
            out[new + key[len(old):]] = state_dict.pop(key)
    return out


def state_dict_key_replace(state_dict: dict[str, Any], keys_to_replace: Mapping[str, str]) -> dict[str, Any]:
    for old, new in keys_to_replace.items():
        if old in state_dict:
            state_dict[new] = state_dict.pop(old)
    return state_dict


def lanczos(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Lanczos resize of channels-first ``[B, C, H, W]`` samples (through PIL, as the image nodes do)."""
    out = imaging.upscale(samples.movedim(1, -1).clamp(0, 1), width, height, "lanczos")
    return out.movedim(-1, 1).to(device=samples.device, dtype=samples.dtype)


def common_upscale(samples: torch.Tensor, width: int, height: int, upscale_method: str,
                   crop: str) -> torch.Tensor:
    """Resize channels-first ``[B, C, H, W]`` samples (images moved to channels-first, or latents) with one of
    the image nodes' methods, optionally center-cropping to the target aspect first."""
    if upscale_method == "lanczos":
        if crop == "center":
            x, y, w, h = imaging.center_crop_box(samples.shape[3], samples.shape[2], width, height)
            samples = samples[:, :, y:y + h, x:x + w]
        return lanczos(samples, width, height)
    if upscale_method == "bislerp":
        upscale_method = "bilinear"  # Hearth's bislerp lives in the SD plugin, which core must not import
    return imaging.upscale(samples.movedim(1, -1), width, height, upscale_method, crop).movedim(-1, 1)


def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    # The last tile is aligned to the far edge rather than hanging over it, so every tile has the full size.
    if size <= tile:
        return [0]
    return [*range(0, size - tile, max(tile - overlap, 1)), size - tile]


def get_tiled_scale_steps(width: int, height: int, tile_x: int, tile_y: int, overlap: int) -> int:
    """How many tiles :func:`tiled_scale` runs (packs size their ProgressBar with it)."""
    return len(_tile_starts(height, tile_y, overlap)) * len(_tile_starts(width, tile_x, overlap))


def _feather(height: int, width: int, border: int, device: Any) -> torch.Tensor:
    # Weights ramp up over `border` pixels from every edge and never reach 0, so overlapping tiles blend and an
    # edge covered by one tile alone normalizes back to that tile's value.
    def ramp(n: int) -> torch.Tensor:
        steps = torch.arange(n, device=device, dtype=torch.float32)
        edge = torch.minimum(steps, steps.flip(0)) + 1
        return (edge / (border + 1)).clamp(max=1.0) if border > 0 else torch.ones(n, device=device)

    return ramp(height)[:, None] * ramp(width)[None, :]


@torch.inference_mode()
def tiled_scale(samples: torch.Tensor, function: Any, tile_x: int = 64, tile_y: int = 64, overlap: int = 8,
                upscale_amount: float = 4, out_channels: int = 3, output_device: Any = "cpu",
                pbar: ProgressBar | None = None) -> torch.Tensor:
    """Run ``function`` (an upscaler, a VAE decode) over overlapping tiles of ``[B, C, H, W]`` samples and blend
    the ``upscale_amount``-times larger results, so large images fit in memory."""
    batch, _, height, width = samples.shape
    out_h, out_w = round(height * upscale_amount), round(width * upscale_amount)
    output = torch.zeros(batch, out_channels, out_h, out_w, device=output_device)
    weight = torch.zeros(batch, 1, out_h, out_w, device=output_device)
    border = round(overlap * upscale_amount)
    for y in _tile_starts(height, tile_y, overlap):
        for x in _tile_starts(width, tile_x, overlap):
            result = function(samples[:, :, y:y + tile_y, x:x + tile_x]).to(output_device, torch.float32)
            th, tw = result.shape[-2:]
            oy, ox = round(y * upscale_amount), round(x * upscale_amount)
            mask = _feather(th, tw, border, output.device)
            output[:, :, oy:oy + th, ox:ox + tw] += result * mask
            weight[:, :, oy:oy + th, ox:ox + tw] += mask
            if pbar is not None:
                pbar.update(1)
    return output / weight.clamp(min=1e-8)


def repeat_to_batch_size(tensor: torch.Tensor, batch_size: int, dim: int = 0) -> torch.Tensor:
    if tensor.shape[dim] > batch_size:
        return tensor.narrow(dim, 0, batch_size)
    if tensor.shape[dim] < batch_size:
        repeats = [1] * tensor.ndim
        repeats[dim] = -(batch_size // -tensor.shape[dim])
        return tensor.repeat(*repeats).narrow(dim, 0, batch_size)
    return tensor


def set_progress_bar_enabled(enabled: bool) -> None:
    global PROGRESS_BAR_ENABLED
    PROGRESS_BAR_ENABLED = enabled
