"""AnimateDiff motion modules for SD1.x: the temporal transformers of the v1, v2 and v3 files, in their key layout.

A motion module file holds one temporal transformer per place of the SD1 UNet where AnimateDiff adds one:
``down_blocks.N.motion_modules.M`` after each ResBlock(+attention) of level N, ``up_blocks.N.motion_modules.M``
likewise on the way up (up block 0 is the deepest level), and for v2 ``mid_block.motion_modules.0`` between the
middle block's attention and its second ResBlock. Each is::

    temporal_transformer.norm                       GroupNorm(32, C)
    temporal_transformer.proj_in / proj_out         Linear(C, C)
    temporal_transformer.transformer_blocks.K.
        attention_blocks.{0,1}.to_q/to_k/to_v       Linear(C, C), no bias
        attention_blocks.{0,1}.to_out.0             Linear(C, C)
        attention_blocks.{0,1}.pos_encoder.pe       [1, max_frames, C] sinusoidal table
        norms.{0,1}, ff_norm                        LayerNorm(C)
        ff.net.0.proj, ff.net.2                     GEGLU feed-forward, 4x wide

The versions differ in what shapes and keys say: v1 has a 24-frame table and no middle module, v2 a 32-frame
table and a middle module, v3 a 32-frame table and no middle module. The heads (8 in every published file) are
not in the shapes; tiny files write theirs to the ``hearth.animatediff.config`` metadata.

Frames travel in the batch dimension (``[(b f), C, h, w]``, ComfyUI's convention); a module attends over ``f``
at every pixel. Weights stay in their stored dtype and are cast to the input's as each layer runs.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models import CheckpointError, load_into, load_state_dict, read_header
from hearth.core.models.attention import unet_attention

CONFIG_METADATA_KEY = "hearth.animatediff.config"
DEFAULT_HEADS = 8
PUBLISHED_FRAMES = {"v1": 24, "v2": 32, "v3": 32}
SDXL_CHANNELS = (320, 640, 1280)  # AnimateDiff's SDXL beta: the same key layout, three levels
# Normalisation of a temporal transformer's input: "frame" is the published code's (each frame's feature map on
# its own, as the modules were trained and as ComfyUI runs them); "video" normalises each group over all frames
# of the clip, as diffusers' AnimateDiffTransformer3D does.
NORMS = ("frame", "video")

_MODULE_KEY = re.compile(r"^(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.motion_modules\.(\d+)\.temporal_transformer\.")
_DIFFUSERS_KEY = re.compile(r"^(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.motion_modules\.(\d+)\.(?!temporal_)")


class _Linear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.weight.to(x.dtype), bias)


class _LayerNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)


class _GroupNorm(nn.GroupNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)


def sinusoidal_table(max_frames: int, channels: int) -> torch.Tensor:
    """The ``pos_encoder.pe`` table ``[1, max_frames, channels]``: sin on even channels, cos on odd ones."""
    position = torch.arange(max_frames, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * (-math.log(10000.0) / channels))
    table = torch.zeros(1, max_frames, channels)
    table[0, :, 0::2] = torch.sin(position * rate)
    table[0, :, 1::2] = torch.cos(position * rate)
    return table


class PositionalEncoding(nn.Module):
    def __init__(self, channels: int, max_frames: int):
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(max_frames, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class TemporalAttention(nn.Module):
    """Self-attention over the frames of one pixel: ``[(b h w), f, C]`` in and out."""

    def __init__(self, channels: int, heads: int, max_frames: int):
        super().__init__()
        self.heads = heads
        self.to_q = _Linear(channels, channels, bias=False)
        self.to_k = _Linear(channels, channels, bias=False)
        self.to_v = _Linear(channels, channels, bias=False)
        self.to_out = nn.ModuleList([_Linear(channels, channels)])
        self.pos_encoder = PositionalEncoding(channels, max_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos_encoder(x)
        n, f, c = x.shape
        # AnimateDiff-Evolved attends with ComfyUI's optimized attention: its sub-quadratic kernel on a CPU.
        return self.to_out[0](unet_attention(self.to_q(x), self.to_k(x), self.to_v(x), self.heads))


class _GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = _Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class _FeedForward(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        # net.1 is dropout in the published module; Identity keeps net.2's index.
        self.net = nn.Sequential(_GEGLU(channels, channels * 4), nn.Identity(), _Linear(channels * 4, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TemporalTransformerBlock(nn.Module):
    def __init__(self, channels: int, heads: int, max_frames: int, attentions: int = 2):
        super().__init__()
        self.attention_blocks = nn.ModuleList(TemporalAttention(channels, heads, max_frames) for _ in range(attentions))
        self.norms = nn.ModuleList(_LayerNorm(channels) for _ in range(attentions))
        self.ff = _FeedForward(channels)
        self.ff_norm = _LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms, strict=True):
            x = attention(norm(x)) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer(nn.Module):
    """Norm, projection in, temporal transformer blocks, projection out, plus the input (a residual)."""

    def __init__(self, channels: int, heads: int, depth: int, max_frames: int, attentions: int = 2):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.max_frames = max_frames
        self.norm = _GroupNorm(32, channels, eps=1e-6)
        self.proj_in = _Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            TemporalTransformerBlock(channels, heads, max_frames, attentions) for _ in range(depth))
        self.proj_out = _Linear(channels, channels)

    def forward(self, x: torch.Tensor, frames: int, norm: str = "frame", scale: float = 1.0) -> torch.Tensor:
        bf, c, h, w = x.shape
        b = bf // frames
        if norm == "video":
            y = self.norm(x.view(b, frames, c, h, w).transpose(1, 2)).transpose(1, 2).reshape(bf, c, h, w)
        else:
            y = self.norm(x)
        # [(b f), C, h, w] -> [(b h w), f, C]: one sequence of frames per pixel.
        y = y.view(b, frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, frames, c)
        y = self.proj_in(y)
        for block in self.transformer_blocks:
            y = block(y)
        y = self.proj_out(y)
        y = y.view(b, h * w, frames, c).permute(0, 2, 3, 1).reshape(bf, c, h, w)
        return x + y if scale == 1.0 else x + y * scale


class MotionModule(nn.Module):
    """``temporal_transformer``, the one child each published motion module has (its file's key prefix)."""

    def __init__(self, channels: int, heads: int, depth: int, max_frames: int, attentions: int = 2):
        super().__init__()
        self.temporal_transformer = TemporalTransformer(channels, heads, depth, max_frames, attentions)

    @property
    def channels(self) -> int:
        return self.temporal_transformer.proj_in.in_features

    def forward(self, x: torch.Tensor, frames: int, norm: str = "frame", scale: float = 1.0) -> torch.Tensor:
        return self.temporal_transformer(x, frames, norm, scale)


class MotionBlock(nn.Module):
    def __init__(self, modules: list[MotionModule]):
        super().__init__()
        self.motion_modules = nn.ModuleList(modules)


@dataclass(frozen=True)
class ModuleShape:
    channels: int
    depth: int  # temporal transformer blocks
    attentions: int  # attention blocks per transformer block


@dataclass(frozen=True)
class MotionConfig:
    """The shape of a motion model: per down/up block, the shape of each of its modules; the middle one if any."""

    down: tuple[tuple[ModuleShape, ...], ...]
    up: tuple[tuple[ModuleShape, ...], ...]
    mid: ModuleShape | None
    max_frames: int
    heads: int = DEFAULT_HEADS

    @property
    def version(self) -> str:
        """``v1``, ``v2`` or ``v3`` (the published SD1.x releases these shapes match)."""
        if self.mid is not None:
            return "v2"
        return "v1" if self.max_frames == PUBLISHED_FRAMES["v1"] else "v3"

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(block[0].channels for block in self.down)

    def describe(self) -> str:
        mid = "with" if self.mid is not None else "no"
        return (f"AnimateDiff {self.version} ({'/'.join(map(str, self.channels))} channels, {mid} middle module, "
                f"up to {self.max_frames} frames)")


class MotionModel(nn.Module):
    """Every motion module of one file, under the file's key names."""

    def __init__(self, config: MotionConfig):
        super().__init__()
        self.config = config

        def block(shapes: tuple[ModuleShape, ...]) -> MotionBlock:
            return MotionBlock([MotionModule(s.channels, config.heads, s.depth, config.max_frames, s.attentions)
                                for s in shapes])

        self.down_blocks = nn.ModuleList(block(shapes) for shapes in config.down)
        self.mid_block = block((config.mid,)) if config.mid is not None else None
        self.up_blocks = nn.ModuleList(block(shapes) for shapes in config.up)

    def site(self, group: str, block: int, index: int) -> MotionModule:
        """The module for ``("down"|"up", block, index)`` or ``("mid", 0, 0)``."""
        if group == "mid":
            return self.mid_block.motion_modules[0]
        blocks = self.down_blocks if group == "down" else self.up_blocks
        return blocks[block].motion_modules[index]


def _count(keys: list[str], prefix: str, pattern: str) -> int:
    found = {int(m.group(1)) for k in keys if k.startswith(prefix) and (m := re.match(pattern, k[len(prefix):]))}
    return max(found) + 1 if found else 0


def config_from_state_dict(state: dict[str, torch.Tensor], heads: int = DEFAULT_HEADS,
                           source: str | Path = "state dict") -> MotionConfig:
    """The :class:`MotionConfig` a state dict in the published layout describes (shapes and key names only)."""
    keys = list(state)
    modules: dict[str, dict[int, ModuleShape]] = {}
    max_frames = None
    for key in keys:
        m = _MODULE_KEY.match(key)
        if m is None:
            continue
        block, index = m.group(1), int(m.group(2))
        if index in modules.get(block, {}):
            continue
        prefix = m.group(0)
        norm = state.get(prefix + "norm.weight")
        if norm is None:
            raise CheckpointError(source, f"motion module {prefix[:-1]} has no norm.weight",
                                  "the file is incomplete; fetch it again")
        depth = _count(keys, prefix, r"transformer_blocks\.(\d+)\.")
        attentions = _count(keys, prefix + "transformer_blocks.0.", r"attention_blocks\.(\d+)\.")
        modules.setdefault(block, {})[index] = ModuleShape(int(norm.shape[0]), depth, attentions)
        pe = state.get(prefix + "transformer_blocks.0.attention_blocks.0.pos_encoder.pe")
        if pe is not None and max_frames is None:
            max_frames = int(pe.shape[1])

    def blocks(kind: str) -> tuple[tuple[ModuleShape, ...], ...]:
        n = 1 + max((int(b.split(".")[1]) for b in modules if b.startswith(kind + ".")), default=-1)
        out = []
        for i in range(n):
            found = modules.get(f"{kind}.{i}", {})
            if sorted(found) != list(range(len(found))) or not found:
                raise CheckpointError(source, f"{kind}.{i} has motion modules {sorted(found)}; expected 0..N",
                                      "the file is incomplete; fetch it again")
            out.append(tuple(found[j] for j in range(len(found))))
        return tuple(out)

    mid = modules.get("mid_block", {}).get(0)
    return MotionConfig(blocks("down_blocks"), blocks("up_blocks"), mid,
                        max_frames or PUBLISHED_FRAMES["v3"], heads)


def convert_diffusers_motion_adapter(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers ``MotionAdapter`` state dict in the published key layout (the inverse of diffusers' import).

    diffusers drops the ``temporal_transformer`` level and the positional tables and renames the attention and
    norm layers; the loader rebuilds the tables (fixed sinusoids) at diffusers' default length of 32 frames.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _DIFFUSERS_KEY.match(key)
        if m is None:
            out[key] = value
            continue
        rest = (key[m.end():].replace("attn1.", "attention_blocks.0.").replace("attn2.", "attention_blocks.1.")
                .replace("norm1.", "norms.0.").replace("norm2.", "norms.1.").replace("norm3.", "ff_norm."))
        out[m.group(0) + "temporal_transformer." + rest] = value
    return out


def _fill_tables(state: dict[str, torch.Tensor], max_frames: int) -> None:
    # The tables are fixed, not learned: files that leave them out (diffusers' drop them) get the standard ones.
    for key in list(state):
        if key.endswith(".to_q.weight") and ".attention_blocks." in key:
            state.setdefault(key[: -len("to_q.weight")] + "pos_encoder.pe",
                             sinusoidal_table(max_frames, state[key].shape[1]))


def _unknown(path: Path, keys: list[str], why: str) -> CheckpointError:
    shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    return CheckpointError(path, f"not an AnimateDiff motion module for SD1.x ({why}; keys: {shown or 'none'})",
                           "LoadAnimateDiffModel reads the v1, v2 and v3 motion modules (mm_sd_v15*.ckpt, "
                           "v3_sd15_mm.ckpt) and diffusers MotionAdapter files; put them in models/animatediff_models")


def load_motion_model(path: str | Path) -> MotionModel:
    """Read a motion module file (``.safetensors`` or ``.ckpt``) into a :class:`MotionModel`, weights as stored.

    Raises :class:`hearth.core.models.CheckpointError` naming the file when it is unreadable or not a motion module.
    """
    path = Path(path)
    header = read_header(path)
    state = load_state_dict(path)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    keys = sorted(state)
    if not any(_MODULE_KEY.match(k) for k in keys):
        if any(_DIFFUSERS_KEY.match(k) for k in keys):
            state = convert_diffusers_motion_adapter(state)
        else:
            raise _unknown(path, keys, "no down_blocks.N.motion_modules.M.temporal_transformer.* keys")
    strays = [k for k in sorted(state) if not _MODULE_KEY.match(k)]
    if strays:
        raise _unknown(path, strays, f"{len(strays)} key(s) outside the motion modules, such as a SparseCtrl, "
                                     "camera or SDXL adapter has")
    heads = DEFAULT_HEADS
    if CONFIG_METADATA_KEY in header.metadata:
        try:
            heads = int(json.loads(header.metadata[CONFIG_METADATA_KEY])["heads"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(path, f"bad {CONFIG_METADATA_KEY} metadata ({exc})",
                                  "rewrite the file with comfy models make-tiny animatediff") from None
    config = config_from_state_dict(state, heads, path)
    if config.channels == SDXL_CHANNELS:
        raise CheckpointError(path, "an SDXL motion module (AnimateDiff SDXL beta: 320/640/1280 channels)",
                              "Hearth runs the SD1.x motion modules (v1, v2, v3) only; use one with an SD1.x checkpoint")
    if not config.down or len(config.up) != len(config.down):
        raise _unknown(path, keys, f"{len(config.down)} down and {len(config.up)} up blocks")
    for key, value in state.items():
        if key.endswith("pos_encoder.pe") and tuple(value.shape[:2]) != (1, config.max_frames):
            raise CheckpointError(path, f"{key} has shape {tuple(value.shape)}; the first table has "
                                        f"{config.max_frames} frames", "the file is damaged; fetch it again")
    _fill_tables(state, config.max_frames)
    with torch.device("meta"):
        model = MotionModel(config)
    return load_into(model, state, source=path)
