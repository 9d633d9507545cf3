"""The Wan 2.1 text-to-video diffusion transformer, in the key layout of the published (and ComfyUI's) files.

A video latent ``[B, 16, T, H, W]`` is cut into ``(1, 2, 2)`` patches by a Conv3d, runs through ``num_layers``
blocks (self-attention with RMS-normed q/k and a 3D rotary position split over time, height and width;
cross-attention to the UMT5 text; a GELU feed-forward; each modulated by six vectors from the timestep), and a
modulated head projects the tokens back to patches. The network predicts the flow velocity (noise - clean).

Layers cast their weights to the input's dtype as they run, so a float16 or bfloat16 file stays memory-mapped in
its stored dtype while a CPU computes in float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.attention import score_bytes, unet_attention
from hearth.core.models.formats import ModelFormat

FORMAT_NAME = "wan21-t2v"
CONFIG_METADATA_KEY = "hearth.wan.config"  # tiny files record what the keys cannot tell (the head count)
PREFIXES = ("model.diffusion_model.", "")  # a checkpoint-style file nests it; diffusion_models files do not
_SENTINELS = ("patch_embedding.weight", "text_embedding.0.weight", "time_embedding.0.weight",
              "time_projection.1.weight", "blocks.0.self_attn.norm_q.weight", "blocks.0.cross_attn.k.weight",
              "blocks.0.modulation", "head.modulation", "head.head.weight")
HEAD_DIM = 128  # every published Wan 2.1 model: 1.3B has 12 heads of 128, 14B 40


def wan_formats() -> list[ModelFormat]:
    """The Wan 2.1 T2V diffusion model, bare (``diffusion_models/``) and under ``model.diffusion_model.``."""
    return [ModelFormat(FORMAT_NAME if not prefix else f"{FORMAT_NAME}-checkpoint",
                        {prefix + key: None for key in _SENTINELS},
                        "Wan 2.1 text-to-video diffusion transformer", prefixes=(prefix,),
                        extra={"family": "wan21"})
            for prefix in PREFIXES]


@dataclass(frozen=True)
class WanConfig:
    dim: int = 1536
    ffn_dim: int = 8960
    num_heads: int = 12
    num_layers: int = 30
    in_dim: int = 16
    out_dim: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    patch_size: tuple[int, int, int] = (1, 2, 2)
    eps: float = 1e-6
    cross_attn_norm: bool = True

    def __post_init__(self) -> None:
        if self.dim % self.num_heads or (self.dim // self.num_heads) % 2:
            raise ValueError(f"Wan: dim {self.dim} must split into {self.num_heads} heads of an even size")

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    def to_json(self) -> dict:
        return asdict(self)


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], num_heads: int | None = None,
                       source: str = "state dict") -> WanConfig:
    """The config of a Wan state dict (bare keys) from its shapes; the head count is ``dim // 128`` unless given."""
    try:
        dim, in_dim, *patch = shapes["patch_embedding.weight"]
        layers = 1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("blocks."))
        ffn_dim = shapes["blocks.0.ffn.0.weight"][0]
        text_dim = shapes["text_embedding.0.weight"][1]
        freq_dim = shapes["time_embedding.0.weight"][1]
        out_dim = shapes["head.head.weight"][0] // math.prod(patch)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{source}: not a Wan 2.1 diffusion model ({exc} is missing)") from None
    if "img_emb.proj.0.weight" in shapes:
        raise ValueError(f"{source}: a Wan image-to-video model; only text-to-video Wan 2.1 models are supported")
    heads = num_heads or max(1, dim // HEAD_DIM)
    return WanConfig(dim=dim, ffn_dim=ffn_dim, num_heads=heads, num_layers=layers, in_dim=in_dim, out_dim=out_dim,
                     text_dim=text_dim, freq_dim=freq_dim, patch_size=tuple(patch),
                     cross_attn_norm="blocks.0.norm3.weight" in shapes)


def dequantize_scaled_fp8(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ComfyUI "scaled fp8" state dict (``X.weight`` in fp8 with ``X.scale_weight``) as plain weights.

    Each scaled weight becomes ``weight * scale_weight`` in bfloat16; the ``scaled_fp8`` marker and the
    ``X.scale_input`` activation scales (which only an fp8 matmul would use) are dropped. Other states pass as
    they are.
    """
    if not any(key.endswith(".scale_weight") for key in state):
        return {k: v for k, v in state.items() if k != "scaled_fp8"}
    out = {}
    for key, value in state.items():
        if key == "scaled_fp8" or key.endswith(".scale_weight") or key.endswith(".scale_input"):
            continue
        scale = state.get(key[: -len("weight")] + "scale_weight") if key.endswith(".weight") else None
        out[key] = value if scale is None else (value.float() * scale.float()).to(torch.bfloat16)
    return out


# -- layers that cast their weights to the input's dtype --------------------------------------------------------


def _cast(t: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    return None if t is None else t.to(device=x.device, dtype=x.dtype)


class Linear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, _cast(self.weight, x), _cast(self.bias, x))


class Conv3d(nn.Conv3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, _cast(self.weight, x), _cast(self.bias, x))


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the activations' dtype (Wan's norms and modulation are fp32)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


# -- position and time ------------------------------------------------------------------------------------------


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``[cos | sin]`` of ``t * 10000^(-i / (dim/2))``, float32 ``[B, dim]`` (Wan's timestep features)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = t.double()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1).float()


def rope_angles(grid: tuple[int, int, int], head_dim: int, device: torch.device, theta: float = 10000.0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin ``[f*h*w, head_dim/2]`` of the 3D rotary embedding: the head's channel pairs are split
    ``d - 4*(d//6)`` for time, ``2*(d//6)`` each for height and width, each axis with its own frequencies."""
    hw_dim = 2 * (head_dim // 6)
    parts = []
    for axis, (size, axis_dim) in enumerate(zip(grid, (head_dim - 2 * hw_dim, hw_dim, hw_dim), strict=True)):
        inv = 1.0 / theta ** (torch.arange(0, axis_dim, 2, dtype=torch.float64, device=device) / axis_dim)
        angles = torch.arange(size, dtype=torch.float64, device=device)[:, None] * inv[None]
        shape = [1, 1, 1, angles.shape[1]]
        shape[axis] = size
        parts.append(angles.view(shape).expand(*grid, angles.shape[1]))
    angles = torch.cat(parts, dim=-1).reshape(math.prod(grid), -1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved channel pairs of ``x`` ``[B, heads, L, d]`` by the angles (complex multiply)."""
    x32 = x.float().unflatten(-1, (-1, 2))
    real, imag = x32[..., 0], x32[..., 1]
    out = torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1)
    return out.flatten(-2).to(x.dtype)


# -- blocks -----------------------------------------------------------------------------------------------------


class Attention(nn.Module):
    """Self- or cross-attention with RMS norm on queries and keys across all heads (Wan's q/k norm)."""

    def __init__(self, dim: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (Linear(dim, dim) for _ in range(4))
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        source = x if context is None else context
        q = self.norm_q(self.q(x)).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)
        k = self.norm_k(self.k(source)).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)
        v = self.v(source).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        # ComfyUI's optimized_attention on [B, tokens, heads * d]: its kernel on a CPU, fused elsewhere.
        out = unet_attention(q.transpose(1, 2).flatten(2), k.transpose(1, 2).flatten(2), v.transpose(1, 2).flatten(2),
                             self.num_heads)
        return self.o(out)


class WanBlock(nn.Module):
    def __init__(self, config: WanConfig) -> None:
        super().__init__()
        dim, eps = config.dim, config.eps
        self.norm1 = LayerNorm(dim, eps, elementwise_affine=False)
        self.self_attn = Attention(dim, config.num_heads, eps)
        # norm3 (affine) is the cross-attention's, norm2 the feed-forward's: the published files' names.
        self.norm3 = LayerNorm(dim, eps, elementwise_affine=True) if config.cross_attn_norm else nn.Identity()
        self.cross_attn = Attention(dim, config.num_heads, eps)
        self.norm2 = LayerNorm(dim, eps, elementwise_affine=False)
        self.ffn = nn.Sequential(Linear(dim, config.ffn_dim), nn.GELU(approximate="tanh"), Linear(config.ffn_dim, dim))
        self.modulation = nn.Parameter(torch.zeros(1, 6, dim))

    def forward(self, x: torch.Tensor, e: torch.Tensor, context: torch.Tensor,
                rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        shift, scale, gate, c_shift, c_scale, c_gate = (self.modulation.float() + e).chunk(6, dim=1)
        y = self.self_attn((self.norm1(x) * (1 + scale) + shift).to(x.dtype), rope=rope)
        x = (x.float() + y.float() * gate).to(x.dtype)
        x = x + self.cross_attn(self.norm3(x).to(x.dtype), context)
        y = self.ffn((self.norm2(x) * (1 + c_scale) + c_shift).to(x.dtype))
        return (x.float() + y.float() * c_gate).to(x.dtype)


class WanHead(nn.Module):
    def __init__(self, config: WanConfig) -> None:
        super().__init__()
        self.norm = LayerNorm(config.dim, config.eps, elementwise_affine=False)
        self.head = Linear(config.dim, config.out_dim * math.prod(config.patch_size))
        self.modulation = nn.Parameter(torch.zeros(1, 2, config.dim))

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.modulation.float() + e.float().unsqueeze(1)).chunk(2, dim=1)
        return self.head((self.norm(x) * (1 + scale) + shift).to(x.dtype))


class WanModel(nn.Module):
    """``forward(x [B, C, T, H, W], t [B] (0..1000), context [B, L, text_dim]) -> velocity [B, C, T, H, W]``."""

    def __init__(self, config: WanConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.patch_embedding = Conv3d(config.in_dim, dim, kernel_size=config.patch_size, stride=config.patch_size)
        self.text_embedding = nn.Sequential(Linear(config.text_dim, dim), nn.GELU(approximate="tanh"), Linear(dim, dim))
        self.time_embedding = nn.Sequential(Linear(config.freq_dim, dim), nn.SiLU(), Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), Linear(dim, dim * 6))
        self.blocks = nn.ModuleList(WanBlock(config) for _ in range(config.num_layers))
        self.head = WanHead(config)
        self.compute_dtype: torch.dtype | None = None  # None: the weights' dtype

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        dtype = self.compute_dtype or self.patch_embedding.weight.dtype
        b, _, frames, height, width = x.shape
        pt, ph, pw = cfg.patch_size
        # Sizes that are not a multiple of the patch wrap around, as ComfyUI pads, and are cut off again below.
        pad = ((-width) % pw, (-height) % ph, (-frames) % pt)
        if any(pad):
            x = F.pad(x, (0, pad[0], 0, pad[1], 0, pad[2]), mode="circular")
        x = self.patch_embedding(x.to(dtype))
        grid = tuple(x.shape[2:])
        x = x.flatten(2).transpose(1, 2)
        t = t.reshape(-1).to(x.device)
        if t.shape[0] != b:
            t = t.expand(b)
        e = self.time_embedding(sinusoidal_embedding(t, cfg.freq_dim).to(x.device)).float()
        e0 = self.time_projection(e).float().unflatten(1, (6, cfg.dim))
        context = self.text_embedding(context.to(x.device, dtype))
        rope = tuple(r.to(x.device) for r in rope_angles(grid, cfg.head_dim, x.device))
        for block in self.blocks:
            x = block(x, e0, context, rope)
        x = self.head(x, e)
        c = cfg.out_dim
        x = x.reshape(b, *grid, pt, ph, pw, c).permute(0, 7, 1, 4, 2, 5, 3, 6)
        x = x.reshape(b, c, grid[0] * pt, grid[1] * ph, grid[2] * pw)
        return x[:, :, :frames, :height, :width]

    def activation_bytes(self, input_shape: tuple[int, ...], dtype: torch.dtype, text_len: int = 512,
                         device: torch.device | str = "cpu") -> int:
        """Working memory of one forward on ``input_shape`` ``[B, C, T, H, W]``: what is alive at the peak.

        Per video token, the larger of the self-attention's peak (residual, normed input, q/k/v, their rotary
        copies and the attention output: about ten ``dim``-wide vectors) and the feed-forward's (three ``dim``-wide
        and two ``ffn_dim``-wide), plus the unpatchified output; per text token, the embedded context and the
        cross-attention's keys and values (about six ``dim``-wide vectors); and the self-attention's score matrix
        where ``device`` attends with ComfyUI's CPU kernel (:func:`hearth.core.models.attention.score_bytes`: a chunk
        of 4,096 queries against every video token, per head), none where attention runs fused (GPUs).
        ``bench/video_wan.py`` prints this next to the measured peak.
        """
        cfg = self.config
        b, _, frames, height, width = input_shape
        pt, ph, pw = cfg.patch_size
        tokens = -(-frames // pt) * -(-height // ph) * -(-width // pw)
        item = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 4
        per_token = max(10 * cfg.dim, 3 * cfg.dim + 2 * cfg.ffn_dim) * item + cfg.out_dim * math.prod(cfg.patch_size) * 12
        per_text_token = (cfg.text_dim + 6 * cfg.dim) * item
        rope = tokens * cfg.head_dim * 16
        scores = score_bytes(b * cfg.num_heads, tokens, tokens, dtype, device)
        return int(b * tokens * per_token + b * text_len * per_text_token + rope + scores)
