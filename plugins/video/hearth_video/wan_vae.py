"""The Wan 2.1 causal 3D VAE: video <-> 16-channel latents, 4x in time and 8x in space, in the original key layout.

Every temporal convolution is causal (it sees only the current and earlier frames), so a clip can be encoded and
decoded a few frames at a time: a :class:`FrameCache` carries the trailing frames each layer saw in the earlier
chunks, and the result equals running the whole clip at once while memory stays bounded by one chunk. Encoding
takes the first frame alone, then 4 frames at a time (``T`` frames -> ``(T - 1) // 4 + 1`` latents); decoding
takes one latent frame at a time (the first gives 1 frame, each later one 4).

Keys are those of the published checkpoint (``encoder.conv1``, ``encoder.downsamples.N.residual.{0,2,3,6}``,
``...resample.1``, ``...time_conv``, ``encoder.middle.{0,1,2}``, ``encoder.head.{0,2}``, ``conv1``, ``conv2``,
``decoder.upsamples.N...``), the layout ComfyUI loads. Latents are raw (unnormalized), as ComfyUI's VAE returns
them; :func:`normalize_latents` / :func:`denormalize_latents` are the Wan 2.1 latent format the diffusion model
works in. :func:`load_wan_vae` gives the VAE value nodes pass (:mod:`hearth_video.wan_vae_value`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.attention import vae_attention

if TYPE_CHECKING:
    from .wan_vae_value import WanVAE

TEMPORAL_COMPRESSION = 4
SPATIAL_COMPRESSION = 8
LATENT_CHANNELS = 16

# The Wan 2.1 latent format: per-channel statistics of the VAE's latents (ComfyUI's ``Wan21`` latent format).
LATENTS_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
LATENTS_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
               3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)


def _stats(latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, -1) + (1,) * (latent.ndim - 2)
    mean = torch.tensor(LATENTS_MEAN, device=latent.device, dtype=latent.dtype).view(shape)
    std = torch.tensor(LATENTS_STD, device=latent.device, dtype=latent.dtype).view(shape)
    return mean, std


def normalize_latents(raw: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents -> the scaled latents the Wan diffusion model denoises (``process_latent_in``)."""
    mean, std = _stats(raw)
    return (raw - mean) / std


def denormalize_latents(scaled: torch.Tensor) -> torch.Tensor:
    """Scaled latents -> raw VAE latents (``process_latent_out``)."""
    mean, std = _stats(scaled)
    return scaled * std + mean


@dataclass(frozen=True)
class WanVAEConfig:
    """Shape of a Wan VAE. The published 2.1 VAE is the default; tiny test models shrink ``base_dim``."""

    base_dim: int = 96
    z_dim: int = LATENT_CHANNELS
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    temporal_downsample: tuple[bool, ...] = (False, True, True)

    @property
    def temporal_compression(self) -> int:
        return 2 ** sum(self.temporal_downsample)

    @property
    def spatial_compression(self) -> int:
        return 2 ** (len(self.dim_mult) - 1)


class FrameCache:
    """What each causal layer saw at the end of the earlier chunks of one clip (one cache per encode/decode)."""

    def __init__(self) -> None:
        self._frames: dict[int, torch.Tensor | None] = {}

    def seen(self, layer: nn.Module) -> bool:
        return id(layer) in self._frames

    def get(self, layer: nn.Module) -> torch.Tensor | None:
        return self._frames.get(id(layer))

    def put(self, layer: nn.Module, frames: torch.Tensor | None) -> None:
        # A copy, so the cache never keeps a whole chunk's activation alive through a view.
        self._frames[id(layer)] = None if frames is None else frames.clone()

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._frames.values() if t is not None)


class CausalConv3d(nn.Conv3d):
    """A 3D convolution padded only on the past side in time; with a cache, earlier chunks' frames replace the
    zero padding, so chunk after chunk computes what the whole clip would."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] = 1, padding: int | tuple[int, int, int] = 0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        pt, ph, pw = (padding,) * 3 if isinstance(padding, int) else padding
        self.past = 2 * pt
        self.spatial = (pw, pw, ph, ph)

    def forward(self, x: torch.Tensor, cache: FrameCache | None = None) -> torch.Tensor:
        past = self.past
        if cache is not None and past > 0:
            earlier = cache.get(self)
            stream = x if earlier is None else torch.cat([earlier, x], dim=2)
            cache.put(self, stream[:, :, -past:])
            if earlier is not None:
                x, past = stream, past - earlier.shape[2]
        if x.device.type != "cpu":
            return super().forward(F.pad(x, (*self.spatial, past, 0)))
        return self._by_frames(x, past)

    def _by_frames(self, x: torch.Tensor, past: int) -> torch.Tensor:
        # On CPUs, torch runs Conv3d through an im2col path that is slow and allocates 27x its input. The same
        # sum written as one 2D convolution per temporal tap over a batch of frames runs through oneDNN instead:
        # several times faster, no such buffer, no padded copy (conv2d pads space itself), and the taps that
        # would fall on the ``past`` zero frames are skipped rather than computed.
        kt, st = self.kernel_size[0], self.stride[0]
        b, c, t, h, w = x.shape
        t_out = (past + t - kt) // st + 1
        frames = x.transpose(1, 2).contiguous()  # [B, T, C, H, W]: a run of frames is one contiguous batch
        pad = (self.spatial[2], self.spatial[0])
        out = None
        for k in reversed(range(kt)):  # the last tap sees a real frame for every output: it starts the sum
            first = max(0, -(-(past - k) // st))  # the first output whose tap k is a real frame
            if first >= t_out:
                continue
            start = first * st + k - past
            taps = frames[:, start:start + st * (t_out - first - 1) + 1:st].reshape(-1, c, h, w)
            y = F.conv2d(taps, self.weight[:, :, k], self.bias if out is None else None, self.stride[1:], pad)
            if out is None:
                out = y.view(b, t_out, *y.shape[1:])
            else:
                out[:, first:] += y.view(b, t_out - first, *y.shape[1:])
        return out.transpose(1, 2)


class RMSNorm(nn.Module):
    """Normalize each position's channel vector to unit RMS, times a learned gain (``gamma``)."""

    def __init__(self, dim: int, images: bool = True) -> None:
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        return F.normalize(wide, dim=1).to(x.dtype) * self.scale * self.gamma.to(x.dtype)


class ResidualBlock(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        # Index positions are the checkpoint's: residual.{0,2,3,6} hold weights, the rest are parameter-free.
        self.residual = nn.Sequential(
            RMSNorm(in_dim, images=False), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMSNorm(out_dim, images=False), nn.SiLU(), nn.Dropout(0.0), CausalConv3d(out_dim, out_dim, 3, padding=1))
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor, cache: FrameCache | None = None) -> torch.Tensor:
        r = self.residual
        h = r[2](F.silu(r[0](x)), cache)
        h = r[6](F.silu(r[3](h)), cache)
        return h + self.shortcut(x)


class AttentionBlock(nn.Module):
    """Single-head self-attention over the positions of each frame (frames do not attend to each other)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, cache: FrameCache | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.norm(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        # ComfyUI's VAE attention (its "split" kernel on a CPU), as for SD's VAE.
        y = self.proj(vae_attention(*self.to_qkv(y).chunk(3, dim=1)))
        return x + y.view(b, t, c, h, w).permute(0, 2, 1, 3, 4)


class Upsample(nn.Upsample):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class Resample(nn.Module):
    """Halve or double height and width (a 2D conv per frame), and for the ``3d`` modes time as well.

    Time is resampled causally with the first frame kept apart: downsampling maps ``1 + 2n`` frames to ``1 + n``,
    upsampling ``1 + n`` to ``1 + 2n``, which is how 4x temporal compression gives ``(T - 1) // 4 + 1`` latents.
    """

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode.startswith("up"):
            self.resample = nn.Sequential(Upsample(scale_factor=(2.0, 2.0), mode="nearest-exact"),
                                          nn.Conv2d(dim, dim // 2, 3, padding=1))
            if mode == "upsample3d":
                self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        else:
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=(2, 2)))
            if mode == "downsample3d":
                self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    @staticmethod
    def _interleave(x: torch.Tensor) -> torch.Tensor:
        # The time conv doubles the channels; each half becomes one of two consecutive output frames.
        b, c2, t, h, w = x.shape
        return x.view(b, 2, c2 // 2, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c2 // 2, 2 * t, h, w)

    def forward(self, x: torch.Tensor, cache: FrameCache | None = None) -> torch.Tensor:
        if self.mode == "upsample3d":
            if cache is None:
                if x.shape[2] > 1:  # the first frame passes through; the rest double
                    x = torch.cat([x[:, :, :1], self._interleave(self.time_conv(x[:, :, 1:]))], dim=2)
            elif not cache.seen(self):
                cache.put(self, None)  # the first chunk is the first frame: not doubled
            else:
                x = self._interleave(self.time_conv(x, cache))
        b, c, t, h, w = x.shape
        y = self.resample(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        x = y.view(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)
        if self.mode == "downsample3d":
            if cache is None:
                if x.shape[2] > 1:  # frame 0, then one frame per window (2k, 2k+1, 2k+2)
                    x = torch.cat([x[:, :, :1], self.time_conv(x)], dim=2)
            else:
                earlier = cache.get(self)
                cache.put(self, x[:, :, -1:])
                if earlier is not None:
                    x = self.time_conv(torch.cat([earlier, x], dim=2))
        return x


def _run(layer: nn.Module, x: torch.Tensor, cache: FrameCache | None) -> torch.Tensor:
    return layer(x, cache) if isinstance(layer, (ResidualBlock, AttentionBlock, Resample, CausalConv3d)) else layer(x)


class Encoder3d(nn.Module):
    def __init__(self, config: WanVAEConfig) -> None:
        super().__init__()
        dim = config.base_dim
        dims = [dim * u for u in (1, *config.dim_mult)]
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        blocks: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            for _ in range(config.num_res_blocks):
                blocks.append(ResidualBlock(in_dim, out_dim))
                in_dim = out_dim
            if i != len(config.dim_mult) - 1:
                blocks.append(Resample(out_dim, "downsample3d" if config.temporal_downsample[i] else "downsample2d"))
        self.downsamples = nn.Sequential(*blocks)
        top = dims[-1]
        self.middle = nn.Sequential(ResidualBlock(top, top), AttentionBlock(top), ResidualBlock(top, top))
        self.head = nn.Sequential(RMSNorm(top, images=False), nn.SiLU(), CausalConv3d(top, config.z_dim * 2, 3, padding=1))

    def forward(self, x: torch.Tensor, cache: FrameCache | None = None) -> torch.Tensor:
        x = self.conv1(x, cache)
        for layer in (*self.downsamples, *self.middle):
            x = _run(layer, x, cache)
        return self.head[2](F.silu(self.head[0](x)), cache)


class Decoder3d(nn.Module):
    def __init__(self, config: WanVAEConfig) -> None:
        super().__init__()
        dim = config.base_dim
        mult = config.dim_mult
        dims = [dim * u for u in (mult[-1], *mult[::-1])]
        temporal_upsample = config.temporal_downsample[::-1]
        self.conv1 = CausalConv3d(config.z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0]), AttentionBlock(dims[0]),
                                    ResidualBlock(dims[0], dims[0]))
        blocks: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            if i > 0:
                in_dim //= 2  # each upsampling conv halves the channels
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResidualBlock(in_dim, out_dim))
                in_dim = out_dim
            if i != len(mult) - 1:
                blocks.append(Resample(out_dim, "upsample3d" if temporal_upsample[i] else "upsample2d"))
        self.upsamples = nn.Sequential(*blocks)
        self.head = nn.Sequential(RMSNorm(dims[-1], images=False), nn.SiLU(), CausalConv3d(dims[-1], 3, 3, padding=1))

    def forward(self, x: torch.Tensor, cache: FrameCache | None = None) -> torch.Tensor:
        x = self.conv1(x, cache)
        for layer in (*self.middle, *self.upsamples):
            x = _run(layer, x, cache)
        return self.head[2](F.silu(self.head[0](x)), cache)


class WanVAEModel(nn.Module):
    """The network: ``encode`` video in -1..1 ``[B, 3, T, H, W]`` -> raw latent mean ``[B, z, (T-1)//4+1, H/8, W/8]``,
    ``decode_chunks`` yields the decoded frames chunk by chunk."""

    def __init__(self, config: WanVAEConfig = WanVAEConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder3d(config)
        self.conv1 = CausalConv3d(config.z_dim * 2, config.z_dim * 2, 1)
        self.conv2 = CausalConv3d(config.z_dim, config.z_dim, 1)
        self.decoder = Decoder3d(config)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv2.weight.dtype

    def usable_frames(self, frames: int) -> int:
        """How many leading frames an encode uses: ``1 + 4k``, the most that fit in ``frames``."""
        step = self.config.temporal_compression
        return 1 + (frames - 1) // step * step

    def encode(self, x: torch.Tensor, chunked: bool = True) -> torch.Tensor:
        """Raw latents (the posterior's mean) of the first :meth:`usable_frames` frames of ``x``."""
        step = self.config.temporal_compression
        x = x[:, :, :self.usable_frames(x.shape[2])].to(self.dtype)
        if chunked:
            cache = FrameCache()
            chunks = [x[:, :, :1]] + [x[:, :, s:s + step] for s in range(1, x.shape[2], step)]
            out = torch.cat([self.encoder(chunk, cache) for chunk in chunks], dim=2)
        else:
            out = self.encoder(x)
        return self.conv1(out)[:, :self.config.z_dim]

    def decode_chunks(self, z: torch.Tensor) -> Iterator[torch.Tensor]:
        """Decoded frames in -1..1, one latent frame at a time (1 frame, then 4 per latent frame)."""
        x = self.conv2(z.to(self.dtype))
        cache = FrameCache()
        for i in range(x.shape[2]):
            yield self.decoder(x[:, :, i:i + 1], cache).clamp(-1.0, 1.0)

    def decode(self, z: torch.Tensor, chunked: bool = True) -> torch.Tensor:
        """Decoded video ``[B, 3, 1 + 4 (T-1), H, W]`` in -1..1; ``chunked=False`` runs all frames in one pass."""
        if chunked:
            return torch.cat(list(self.decode_chunks(z)), dim=2)
        return self.decoder(self.conv2(z.to(self.dtype))).clamp(-1.0, 1.0)


# -- checkpoints ---------------------------------------------------------------------------------------------

SENTINELS: Mapping[str, tuple[int, ...] | None] = {
    "encoder.conv1.weight": None,
    "encoder.middle.1.to_qkv.weight": None,
    "decoder.middle.0.residual.0.gamma": None,
    "decoder.head.2.weight": None,
    "conv1.weight": None,
    "conv2.weight": None,
}


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], source: str = "state dict") -> WanVAEConfig:
    """The :class:`WanVAEConfig` a checkpoint's shapes describe (channel widths, blocks, where time is resampled)."""
    from hearth.core.models import CheckpointError

    missing = [key for key in SENTINELS if key not in shapes]
    if missing:
        raise CheckpointError(source, f"not a Wan 2.1 VAE (no {missing[0]!r})",
                              "VAELoader reads Wan 2.1 VAE files such as wan_2.1_vae.safetensors")
    conv_in = shapes["encoder.conv1.weight"]
    if len(conv_in) != 5 or conv_in[1] != 3:
        raise CheckpointError(source, f"encoder.conv1.weight has shape {conv_in}, expected [dim, 3, 3, 3, 3]",
                              "only the Wan 2.1 VAE (3 input channels) is supported, not the Wan 2.2 one")
    base = conv_in[0]
    mult, res_blocks, temporal, count = [], [], [], 0
    index = 0
    while f"encoder.downsamples.{index}.residual.2.weight" in shapes or \
            f"encoder.downsamples.{index}.resample.1.weight" in shapes:
        prefix = f"encoder.downsamples.{index}."
        if prefix + "residual.2.weight" in shapes:
            count += 1
            width = shapes[prefix + "residual.2.weight"][0]
        else:
            mult.append(width // base)
            res_blocks.append(count)
            temporal.append(prefix + "time_conv.weight" in shapes)
            count = 0
        index += 1
    if count:
        mult.append(width // base)
        res_blocks.append(count)
    if not res_blocks or len(set(res_blocks)) != 1:
        raise CheckpointError(source, "encoder.downsamples has an unexpected block structure",
                              "is this a Wan 2.1 VAE file?")
    return WanVAEConfig(base_dim=base, z_dim=shapes["conv2.weight"][0], dim_mult=tuple(mult),
                        num_res_blocks=res_blocks[0], temporal_downsample=tuple(temporal))


def build_model(state: Mapping[str, torch.Tensor], source: str = "state dict") -> WanVAEModel:
    """A :class:`WanVAEModel` holding the tensors of ``state`` (no copy: built on the meta device, then assigned)."""
    from hearth.core.models import load_into

    config = config_from_shapes({k: tuple(v.shape) for k, v in state.items()}, source)
    with torch.device("meta"):
        model = WanVAEModel(config)
    return load_into(model, state, source=source).eval()


def decode_memory_estimate(latent_shape: tuple[int, ...], config: WanVAEConfig, dtype: torch.dtype = torch.float32,
                           chunked: bool = True) -> int:
    """Working bytes one decode of ``[B, C, T, h, w]`` latents needs beyond the weights and the decoded frames.

    The unit is one "plane": one output frame of the last up-block's activation (``base_dim`` channels at full
    resolution). The factors are measured (``bench/video.py``, peak resident set above the start, float32 on a
    CPU, 64 to 256 pixels): a whole-clip pass peaks near 8 planes per output frame; a chunked one near 20 planes
    per frame of its 4-frame chunk, about half of it the causal cache (two frames per causal conv) and the
    copies each conv makes of its input joined to that cache. Chunked, the figure does not grow with the clip.
    """
    b, _, t, h, w = latent_shape
    f = config.spatial_compression
    plane = b * h * w * f * f * config.base_dim * torch.finfo(dtype).bits // 8
    if chunked:
        return 20 * config.temporal_compression * plane
    return 8 * (1 + config.temporal_compression * (t - 1)) * plane


def encode_memory_estimate(frames: int, height: int, width: int, config: WanVAEConfig,
                           dtype: torch.dtype = torch.float32) -> int:
    """Working bytes one chunked encode of ``frames`` frames of ``height x width`` pixels needs beyond the weights.

    About 14 planes (``base_dim`` channels at full resolution) per frame of a 4-frame chunk, plus two float32
    copies of the clip (scaled to -1..1, and laid out channels first); measured by ``bench/video.py``.
    """
    plane = height * width * config.base_dim * torch.finfo(dtype).bits // 8
    return 14 * config.temporal_compression * plane + 2 * frames * height * width * 3 * 4


def model_format():
    """The :class:`~hearth.core.models.ModelFormat` of a Wan 2.1 VAE file (standalone, keys without prefix)."""
    from hearth.core.models import ModelFormat

    return ModelFormat("wan21_vae", sentinels=SENTINELS, prefixes=("",),
                       description="Wan 2.1 causal 3D VAE (a standalone VAE file, as VAELoader reads)",
                       extra={"part": "vae", "family": "wan21"})


def load_wan_vae(path, device=None) -> WanVAE:
    """A Wan 2.1 VAE file as a VAE value (what VAELoader gives for it).

    :raises hearth.core.models.CheckpointError: naming the file when it is not a Wan 2.1 VAE.
    """
    from pathlib import Path

    from hearth.core.models import (
        Loaded,
        PatchedModel,
        compute_dtype,
        default_device,
        load_once,
        load_state_dict,
        read_header,
    )

    path = Path(path)
    device = torch.device(device) if device is not None else default_device()

    def make() -> Loaded:
        header = read_header(path)
        config_from_shapes(header.shapes, str(path))  # a clear error before any tensor is read
        model = build_model(load_state_dict(path), str(path))
        # float32 on CPUs (half-precision 3D convolutions are slow there), bfloat16 where the device runs it well.
        dtype = torch.float32 if device.type == "cpu" else compute_dtype(device, (torch.bfloat16, torch.float32))
        if model.dtype != dtype:
            model = model.to(dtype)
        config = model.config

        def estimate(input_shape, dtype):
            if input_shape is None or len(input_shape) != 5:
                return 0
            return decode_memory_estimate(tuple(input_shape), config, dtype or torch.float32)

        patcher = PatchedModel(model, name=path.name, load_device=device, memory_estimate=estimate)
        return Loaded(path, model=model, patcher=patcher)

    from .wan_vae_value import WanVAE

    record = load_once("vae", path, make, "wan21", str(device))
    return WanVAE(record.model, record.patcher.clone(), source=record)


def tiny_config() -> WanVAEConfig:
    """The tiny test VAE: the real structure (4 levels, 2 residual blocks, time resampled twice), 8 base channels."""
    return WanVAEConfig(base_dim=8)


def write_tiny_wan_vae(path, seed: int = 0) -> None:
    """A tiny Wan 2.1 VAE file with random weights in the published key layout (about 4 MB, float32)."""
    from pathlib import Path

    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WanVAEModel(tiny_config())
        with torch.no_grad():  # gains away from 1, so a test notices a norm that ignores them
            for name, param in model.named_parameters():
                if name.endswith("gamma"):
                    param.add_(torch.randn_like(param) * 0.2)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"hearth.video.tiny": "random Wan 2.1 VAE weights, for tests only"})
