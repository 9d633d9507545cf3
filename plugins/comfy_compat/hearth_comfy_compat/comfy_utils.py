"""ComfyUI's ``comfy.utils`` module: progress bars feeding Hearth's progress events, checkpoint IO, state-dict key
helpers, attribute paths into models, resizing (lanczos, bislerp, tiled) and batch and mask shaping.

What differs: ``tiled_scale`` aligns its last tile to the far edge (every tile full size) rather than letting it
hang over; ``tiled_scale_multidim`` takes ``upscale_amount`` per dimension and ignores ``index_formulas``.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from hearth.core import context
from hearth.core import images as imaging

__all__ = ["PROGRESS_BAR_ENABLED", "PROGRESS_BAR_HOOK", "TRANSFORMER_BLOCKS", "UNET_MAP_ATTENTIONS", "UNET_MAP_BASIC",
           "UNET_MAP_RESNET", "ProgressBar", "bislerp", "calculate_parameters", "common_upscale", "convert_sd_to",
           "copy_to_param", "get_attr", "get_tiled_scale_steps", "lanczos", "load_torch_file", "repeat_to_batch_size",
           "reshape_mask", "resize_to_batch_size", "save_torch_file", "set_attr", "set_attr_param",
           "set_progress_bar_enabled", "set_progress_bar_global_hook", "state_dict_key_replace",
           "state_dict_prefix_replace", "string_to_seed", "tiled_scale", "tiled_scale_multidim", "unet_to_diffusers"]

PROGRESS_BAR_ENABLED = True
# A function a pack installs to see every ProgressBar's updates, (value, total, preview, node_id=...), as ComfyUI's
# server does; Hearth's own progress events are sent whether or not one is set.
PROGRESS_BAR_HOOK: Callable[..., Any] | None = None


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
        self.hook = PROGRESS_BAR_HOOK

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
        if self.hook is not None:
            _call_hook(self.hook, self.current, self.total, preview, self.node_id)

    def update(self, value: int) -> None:
        self.update_absolute(self.current + value)


def _call_hook(hook: Callable[..., Any], value: int, total: int, preview: Any, node_id: Any) -> None:
    # ComfyUI's hooks grew a node_id keyword; a pack's older hook takes three arguments.
    try:
        takes_node = "node_id" in inspect.signature(hook).parameters
    except (TypeError, ValueError):
        takes_node = False
    if takes_node:
        hook(value, total, preview, node_id=node_id)
    else:
        hook(value, total, preview)


def set_progress_bar_global_hook(function: Callable[..., Any] | None) -> None:
    """Install the function every ProgressBar made from now on also reports to (``None`` removes it)."""
    global PROGRESS_BAR_HOOK
    PROGRESS_BAR_HOOK = function


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


def _slerp_axis(samples: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    # Resize one spatial axis of [B, C, ...] samples: each output position lies between two source positions (as
    # bilinear resizing places them) and gets the spherical interpolation of their channel vectors, its length
    # interpolated linearly; a vector of length 0 contributes its direction as 0.
    length = samples.shape[dim]
    position = ((torch.arange(size, dtype=torch.float32) + 0.5) * (length / size) - 0.5).clamp(0, length - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=length - 1)
    shape = [1] * samples.ndim
    shape[dim] = size
    ratio = (position - low).reshape(shape).to(samples.device)
    a = samples.index_select(dim, low.to(samples.device))
    b = samples.index_select(dim, high.to(samples.device))
    norm_a, norm_b = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    unit_a = torch.where(norm_a > 0, a / norm_a.clamp(min=1e-12), torch.zeros_like(a))
    unit_b = torch.where(norm_b > 0, b / norm_b.clamp(min=1e-12), torch.zeros_like(b))
    dot = (unit_a * unit_b).sum(dim=1, keepdim=True).clamp(-1, 1)
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    safe = sin_omega.abs() > 1e-6
    weight_a = torch.where(safe, torch.sin((1 - ratio) * omega) / sin_omega.where(safe, torch.ones_like(sin_omega)),
                           1 - ratio)
    weight_b = torch.where(safe, torch.sin(ratio * omega) / sin_omega.where(safe, torch.ones_like(sin_omega)), ratio)
    direction = weight_a * unit_a + weight_b * unit_b
    result = direction * (norm_a * (1 - ratio) + norm_b * ratio)
    # Nearly equal directions: the first vector; opposite ones: plain linear interpolation.
    result = torch.where(dot > 1 - 1e-5, a, result)
    return torch.where(dot < 1e-5 - 1, torch.lerp(a, b, ratio), result)


def bislerp(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize channels-first ``[B, C, H, W]`` latents by spherical interpolation of their channel vectors, first
    along the width, then the height (ComfyUI's ``bislerp``: keeps a latent's per-pixel magnitude where
    bilinear resizing would shrink it)."""
    dtype = samples.dtype
    out = _slerp_axis(samples.float(), width, 3)
    return _slerp_axis(out, height, 2).to(dtype)


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
        if crop == "center":
            x, y, w, h = imaging.center_crop_box(samples.shape[3], samples.shape[2], width, height)
            samples = samples[:, :, y:y + h, x:x + w]
        return bislerp(samples, width, height)
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


def resize_to_batch_size(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``tensor`` with ``batch_size`` items along dimension 0, picked evenly from its items (shrinking keeps the
    first and last; growing repeats each item in turn)."""
    count = tensor.shape[0]
    if count == batch_size:
        return tensor
    if batch_size <= 1:
        return tensor[:batch_size]
    if batch_size < count:
        step = (count - 1) / (batch_size - 1)
        picks = [min(round(i * step), count - 1) for i in range(batch_size)]
    else:
        step = count / batch_size
        picks = [min(math.floor((i + 0.5) * step), count - 1) for i in range(batch_size)]
    return tensor[torch.tensor(picks, device=tensor.device)]


def reshape_mask(input_mask: torch.Tensor, output_shape: Sequence[int]) -> torch.Tensor:
    """A mask (``[H, W]``, ``[B, H, W]`` or ``[B, 1, H, W]``; ``[..., T, H, W]`` for video latents) resized to the
    spatial size of ``output_shape`` and repeated to its batch and channel counts."""
    dims = len(output_shape) - 2
    if dims == 1:
        mask = input_mask.reshape(-1, 1, input_mask.shape[-1])
        mode = "linear"
    elif dims == 2:
        mask = input_mask.reshape(-1, 1, input_mask.shape[-2], input_mask.shape[-1])
        mode = "bilinear"
    elif dims == 3:
        if input_mask.ndim < 3:
            input_mask = input_mask.reshape(1, 1, 1, *input_mask.shape)
        mask = input_mask.reshape(-1, 1, *input_mask.shape[-3:])
        mode = "trilinear"
    else:
        raise ValueError(f"reshape_mask: output shape {list(output_shape)} has {dims} spatial dimensions; 1 to 3 "
                         f"are supported")
    mask = torch.nn.functional.interpolate(mask.float(), size=tuple(output_shape[2:]), mode=mode)
    if mask.shape[1] < output_shape[1]:
        mask = mask.repeat(1, output_shape[1], *([1] * dims))[:, :output_shape[1]]
    return repeat_to_batch_size(mask, output_shape[0])


@torch.inference_mode()
def tiled_scale_multidim(samples: torch.Tensor, function: Callable[[torch.Tensor], torch.Tensor],
                         tile: Sequence[int] = (64, 64), overlap: int = 8, upscale_amount: Any = 4,
                         out_channels: int = 3, output_device: Any = "cpu", downscale: bool = False,
                         index_formulas: Any = None, pbar: ProgressBar | None = None) -> torch.Tensor:
    """:func:`tiled_scale` over the last ``len(tile)`` dimensions of ``[B, C, ...]`` samples (video latents have
    three): ``function`` runs on overlapping tiles and the results, ``upscale_amount`` times larger per dimension
    (a number or one per dimension; divided instead with ``downscale``), are blended with feathered edges."""
    dims = len(tile)
    amounts = list(upscale_amount) if isinstance(upscale_amount, Sequence) else [upscale_amount] * dims
    if downscale:
        amounts = [1 / a for a in amounts]
    spatial = samples.shape[2:]
    out_size = [round(n * a) for n, a in zip(spatial, amounts, strict=True)]
    output = torch.zeros(samples.shape[0], out_channels, *out_size, device=output_device)
    weight = torch.zeros(samples.shape[0], 1, *out_size, device=output_device)
    starts = [_tile_starts(n, t, overlap) for n, t in zip(spatial, tile, strict=True)]
    for corner in itertools.product(*starts):
        region = tuple(slice(c, c + t) for c, t in zip(corner, tile, strict=True))
        result = function(samples[(slice(None), slice(None), *region)]).to(output_device, torch.float32)
        placed = tuple(slice(round(c * a), round(c * a) + n)
                       for c, a, n in zip(corner, amounts, result.shape[2:], strict=True))
        mask = torch.ones((), device=output_device)
        for axis, (n, a) in enumerate(zip(result.shape[2:], amounts, strict=True)):
            ramp = _ramp(n, round(overlap * a), output.device)
            mask = mask * ramp.reshape([n if i == axis else 1 for i in range(dims)])
        output[(slice(None), slice(None), *placed)] += result * mask
        weight[(slice(None), slice(None), *placed)] += mask
        if pbar is not None:
            pbar.update(1)
    return output / weight.clamp(min=1e-8)


def _ramp(n: int, border: int, device: Any) -> torch.Tensor:
    steps = torch.arange(n, device=device, dtype=torch.float32)
    edge = torch.minimum(steps, steps.flip(0)) + 1
    return (edge / (border + 1)).clamp(max=1.0) if border > 0 else torch.ones(n, device=device)


def get_attr(obj: Any, attr: str) -> Any:
    """The object at a dotted path below ``obj`` (``"diffusion_model.out.2.weight"``)."""
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj


def set_attr(obj: Any, attr: str, value: Any) -> Any:
    """Put ``value`` at a dotted path below ``obj``; returns what was there."""
    *path, last = attr.split(".")
    parent = get_attr(obj, ".".join(path)) if path else obj
    previous = getattr(parent, last)
    setattr(parent, last, value)
    return previous


def set_attr_param(obj: Any, attr: str, value: torch.Tensor) -> Any:
    """:func:`set_attr` with ``value`` wrapped as a parameter that takes no gradient (a model weight)."""
    return set_attr(obj, attr, torch.nn.Parameter(value, requires_grad=False))


def copy_to_param(obj: Any, attr: str, value: torch.Tensor) -> None:
    """Copy ``value`` into the tensor at a dotted path, in place (the module keeps the same parameter object)."""
    get_attr(obj, attr).data.copy_(value)


def calculate_parameters(sd: Mapping[str, torch.Tensor], prefix: str = "") -> int:
    """How many numbers the state dict's tensors under ``prefix`` hold."""
    return sum(tensor.nelement() for key, tensor in sd.items() if key.startswith(prefix))


def convert_sd_to(state_dict: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every tensor of ``state_dict`` cast to ``dtype``, in place."""
    for key in list(state_dict):
        state_dict[key] = state_dict[key].to(dtype)
    return state_dict


def string_to_seed(data: str | bytes | Iterable[int]) -> int:
    """The CRC-32 of ``data`` (each character taken as its code point), as ComfyUI turns text into a seed."""
    crc = 0xFFFFFFFF
    for item in data:
        crc ^= ord(item) if isinstance(item, str) else int(item)
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


# Key names of the SD UNet in the original (LDM) checkpoints and in diffusers, part by part: what
# unet_to_diffusers combines into a whole map, and what packs read to convert single blocks.
UNET_MAP_ATTENTIONS = {f"{part}.{kind}" for part in ("proj_in", "proj_out", "norm") for kind in ("weight", "bias")}

TRANSFORMER_BLOCKS = {
    *(f"norm{i}.{kind}" for i in (1, 2, 3) for kind in ("weight", "bias")),
    *(f"attn{i}.to_{p}.weight" for i in (1, 2) for p in ("q", "k", "v")),
    *(f"attn{i}.to_out.0.{kind}" for i in (1, 2) for kind in ("weight", "bias")),
    *(f"ff.net.{p}.{kind}" for p in ("0.proj", "2") for kind in ("weight", "bias")),
}

# LDM resnet part -> diffusers resnet part
UNET_MAP_RESNET = {
    **{f"in_layers.0.{k}": f"norm1.{k}" for k in ("weight", "bias")},
    **{f"in_layers.2.{k}": f"conv1.{k}" for k in ("weight", "bias")},
    **{f"emb_layers.1.{k}": f"time_emb_proj.{k}" for k in ("weight", "bias")},
    **{f"out_layers.0.{k}": f"norm2.{k}" for k in ("weight", "bias")},
    **{f"out_layers.3.{k}": f"conv2.{k}" for k in ("weight", "bias")},
    **{f"skip_connection.{k}": f"conv_shortcut.{k}" for k in ("weight", "bias")},
}

# (LDM key, diffusers key) of the parts outside the blocks; the label embedding has two diffusers names.
UNET_MAP_BASIC = {
    *((f"label_emb.0.{i}.{k}", f"{prefix}.linear_{n}.{k}") for prefix in ("class_embedding", "add_embedding")
      for i, n in ((0, 1), (2, 2)) for k in ("weight", "bias")),
    *((f"input_blocks.0.0.{k}", f"conv_in.{k}") for k in ("weight", "bias")),
    *((f"out.0.{k}", f"conv_norm_out.{k}") for k in ("weight", "bias")),
    *((f"out.2.{k}", f"conv_out.{k}") for k in ("weight", "bias")),
    *((f"time_embed.{i}.{k}", f"time_embedding.linear_{n}.{k}") for i, n in ((0, 1), (2, 2))
      for k in ("weight", "bias")),
}


def _transformer_keys(diffusers: str, ldm: str, depth: int) -> dict[str, str]:
    keys = {f"{diffusers}.{part}": f"{ldm}.{part}" for part in UNET_MAP_ATTENTIONS}
    for t in range(depth):
        keys.update({f"{diffusers}.transformer_blocks.{t}.{part}": f"{ldm}.transformer_blocks.{t}.{part}"
                     for part in TRANSFORMER_BLOCKS})
    return keys


def unet_to_diffusers(unet_config: Mapping[str, Any]) -> dict[str, str]:
    """diffusers key -> LDM key of every UNet weight, for a UNet config in ComfyUI's form (``num_res_blocks``,
    ``channel_mult``, ``transformer_depth``, ``transformer_depth_output``, ``transformer_depth_middle``);
    ``{}`` for a config without ``num_res_blocks`` (not a UNet)."""
    if "num_res_blocks" not in unet_config:
        return {}
    res_blocks = list(unet_config["num_res_blocks"])
    levels = len(unet_config["channel_mult"])
    depth_down = list(unet_config["transformer_depth"])
    depth_up = list(unet_config["transformer_depth_output"])
    keys: dict[str, str] = {}
    block = 1
    for level in range(levels):
        for i in range(res_blocks[level]):
            keys.update({f"down_blocks.{level}.resnets.{i}.{d}": f"input_blocks.{block}.0.{ldm}"
                         for ldm, d in UNET_MAP_RESNET.items()})
            depth = depth_down.pop(0)
            if depth > 0:
                keys.update(_transformer_keys(f"down_blocks.{level}.attentions.{i}", f"input_blocks.{block}.1", depth))
            block += 1
        for k in ("weight", "bias"):
            keys[f"down_blocks.{level}.downsamplers.0.conv.{k}"] = f"input_blocks.{block}.0.op.{k}"
        block += 1
    middle = unet_config.get("transformer_depth_middle")
    keys.update(_transformer_keys("mid_block.attentions.0", "middle_block.1", middle or 0))
    for i, index in enumerate((0, 2)):
        keys.update({f"mid_block.resnets.{i}.{d}": f"middle_block.{index}.{ldm}" for ldm, d in UNET_MAP_RESNET.items()})
    block = 0
    for level, count in enumerate(reversed(res_blocks)):
        for i in range(count + 1):
            keys.update({f"up_blocks.{level}.resnets.{i}.{d}": f"output_blocks.{block}.0.{ldm}"
                         for ldm, d in UNET_MAP_RESNET.items()})
            part = 1
            depth = depth_up.pop()
            if depth > 0:
                part += 1
                keys.update(_transformer_keys(f"up_blocks.{level}.attentions.{i}", f"output_blocks.{block}.1", depth))
            if i == count:
                for k in ("weight", "bias"):
                    keys[f"up_blocks.{level}.upsamplers.0.conv.{k}"] = f"output_blocks.{block}.{part}.conv.{k}"
            block += 1
    keys.update({diffusers: ldm for ldm, diffusers in UNET_MAP_BASIC})
    return keys
