"""Z-Image Turbo's single-stream DiT (Lumina 2 / NextDiT lineage) in the published single-file layout.

The caption (Qwen3 hidden states) and the 2x2-patched latent are embedded, each refined by its own blocks (the
caption's without, the image's with timestep modulation), padded to a multiple of 32 tokens with learnt pad tokens,
joined into one sequence and run through the main blocks; a modulated head projects the image tokens back to
patches. Every block is RMS-normed attention (q/k RMS norm, 3-axis rotary embedding of the token's position ids,
theta 256) and a SwiGLU feed-forward, each sandwiched between two RMS norms and gated by ``tanh``.

The keys are ComfyUI's (``z_image_turbo_bf16.safetensors``: ``layers.N.attention.qkv``, ``feed_forward.w1``...),
bare or under ``model.diffusion_model.``; diffusers' layout (``all_x_embedder.2-1``, ``attention.to_q``...) is
converted on load. The module's ``forward`` takes the model's own time (1 at the clean end: ``1 - sigma``) and
returns its raw output, the negated flow velocity, as the published network does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.attention import score_bytes, unet_attention
from hearth.core.models.formats import ModelFormat

from .dit_common import Linear, rms_norm

FORMAT_NAME = "z-image"
CONFIG_METADATA_KEY = "hearth.zimage.config"  # tiny files record what the keys cannot tell (the rotary split)
PREFIXES = ("model.diffusion_model.", "")
_SENTINELS = ("x_embedder.weight", "cap_embedder.1.weight", "t_embedder.mlp.0.weight", "x_pad_token",
              "cap_pad_token", "layers.0.attention.qkv.weight", "layers.0.adaLN_modulation.0.weight",
              "final_layer.adaLN_modulation.1.weight", "context_refiner.0.attention.qkv.weight")
_DIFFUSERS_SENTINELS = ("all_x_embedder.2-1.weight", "cap_embedder.1.weight", "t_embedder.mlp.0.weight",
                        "x_pad_token", "layers.0.attention.to_q.weight", "all_final_layer.2-1.linear.weight")
SEQ_MULTIPLE = 32  # caption and image are each padded to a multiple of this many tokens
FREQUENCY_DIM = 256  # the sinusoidal timestep features
ROPE_THETA = 256.0
TIME_SCALE = 1000.0
PUBLISHED_AXES = (32, 48, 48)  # Z-Image Turbo's rotary split of its 128-wide heads (time/caption, height, width)


def zimage_formats() -> list[ModelFormat]:
    """Z-Image in ComfyUI's layout (bare and under ``model.diffusion_model.``) and in diffusers' layout."""
    formats = [ModelFormat(FORMAT_NAME if not prefix else f"{FORMAT_NAME}-checkpoint",
                           {prefix + key: None for key in _SENTINELS},
                           "Z-Image (Turbo) single-stream diffusion transformer", prefixes=(prefix,),
                           extra={"family": "z-image"})
               for prefix in PREFIXES]
    formats.append(ModelFormat(f"{FORMAT_NAME}-diffusers", {key: None for key in _DIFFUSERS_SENTINELS},
                               "Z-Image diffusion transformer in diffusers' layout", extra={"family": "z-image"}))
    return formats


@dataclass(frozen=True)
class ZImageConfig:
    dim: int = 3840
    n_layers: int = 30
    n_refiner_layers: int = 2
    n_heads: int = 30
    n_kv_heads: int = 30
    ffn_dim: int = 10240
    cap_feat_dim: int = 2560
    in_channels: int = 16
    patch_size: int = 2
    time_mid_dim: int = 1024  # the timestep MLP's hidden width
    adaln_dim: int = 256  # the timestep embedding every block's modulation reads: min(dim, 256)
    axes_dims: tuple[int, int, int] = PUBLISHED_AXES
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(f"Z-Image: dim {self.dim} must split into {self.n_heads} heads, a multiple of the "
                             f"{self.n_kv_heads} key/value heads")
        if sum(self.axes_dims) != self.head_dim or any(d % 2 for d in self.axes_dims):
            raise ValueError(f"Z-Image: the rotary split {self.axes_dims} must be even sizes summing to the head "
                             f"size {self.head_dim}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def to_json(self) -> dict:
        return asdict(self)


def full_size_config() -> ZImageConfig:
    """Z-Image Turbo's published shape (6.15B parameters): for benches that build a full-size-shaped model."""
    return ZImageConfig()


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str] | None = None,
                       source: str = "state dict") -> ZImageConfig:
    """The config of a Z-Image state dict (ComfyUI's keys, bare) from its shapes and, for the rotary split of
    heads other than 128 wide, the file's ``hearth.zimage.config`` metadata."""
    try:
        dim, patch_in = shapes["x_embedder.weight"]
        cap_feat_dim = shapes["cap_embedder.1.weight"][1]
        head_dim = shapes["layers.0.attention.q_norm.weight"][0]
        qkv = shapes["layers.0.attention.qkv.weight"][0]
        ffn_dim = shapes["layers.0.feed_forward.w1.weight"][0]
        time_mid = shapes["t_embedder.mlp.0.weight"][0]
        adaln = shapes["t_embedder.mlp.2.weight"][0]
        layers = 1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("layers."))
        refiners = 1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("noise_refiner."))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{source}: not a Z-Image diffusion model ({exc} is missing)") from None
    n_heads = dim // head_dim
    n_kv = (qkv // head_dim - n_heads) // 2
    patch = math.isqrt(patch_in // 16) if patch_in % 16 == 0 else 0
    if patch < 1 or patch * patch * 16 != patch_in:
        raise ValueError(f"{source}: x_embedder takes {patch_in} features, not 16 latent channels in square patches")
    axes = tuple(json.loads((metadata or {}).get(CONFIG_METADATA_KEY, "{}")).get("axes_dims", ()))
    if not axes:
        if head_dim != sum(PUBLISHED_AXES):
            raise ValueError(f"{source}: heads of {head_dim} channels, and no {CONFIG_METADATA_KEY} metadata saying "
                             f"how the rotary embedding splits them (published Z-Image heads are 128 wide)")
        axes = PUBLISHED_AXES
    return ZImageConfig(dim=dim, n_layers=layers, n_refiner_layers=refiners, n_heads=n_heads, n_kv_heads=n_kv,
                        ffn_dim=ffn_dim, cap_feat_dim=cap_feat_dim, in_channels=16, patch_size=patch,
                        time_mid_dim=time_mid, adaln_dim=adaln, axes_dims=axes)


def convert_zimage_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers' ``ZImageTransformer2DModel`` state dict -> ComfyUI's layout (fused ``qkv``, ``out``, ``q_norm``)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key.replace("all_x_embedder.2-1.", "x_embedder.").replace("all_final_layer.2-1.", "final_layer.")
        new = new.replace(".attention.to_out.0.", ".attention.out.").replace(".attention.norm_q.", ".attention.q_norm.")
        new = new.replace(".attention.norm_k.", ".attention.k_norm.")
        if ".attention.to_q." in new:
            base = key.rsplit(".attention.to_q.", 1)[0]
            out[new.replace(".attention.to_q.", ".attention.qkv.")] = torch.cat(
                [state[f"{base}.attention.to_{p}.weight"] for p in "qkv"])
        elif ".attention.to_k." in new or ".attention.to_v." in new:
            continue
        else:
            out[new] = value
    return out


def diffusers_module_names(config: ZImageConfig) -> dict[str, str | tuple[str, tuple[int, int]]]:
    """diffusers' module names (the ones LoRAs trained on its port use) -> this model's module path, or
    ``(path, (start, end))`` for diffusers' ``to_q`` / ``to_k`` / ``to_v``, rows of the published fused ``qkv``."""
    q, kv = config.n_heads * config.head_dim, config.n_kv_heads * config.head_dim
    names: dict[str, str | tuple[str, tuple[int, int]]] = {
        "all_x_embedder.2-1": "x_embedder", "all_final_layer.2-1.linear": "final_layer.linear",
        "all_final_layer.2-1.adaLN_modulation.1": "final_layer.adaLN_modulation.1"}
    stacks = (("layers", config.n_layers), ("noise_refiner", config.n_refiner_layers),
              ("context_refiner", config.n_refiner_layers))
    for stack, count in stacks:
        for i in range(count):
            block = f"{stack}.{i}.attention"
            names[f"{block}.to_q"] = (f"{block}.qkv", (0, q))
            names[f"{block}.to_k"] = (f"{block}.qkv", (q, q + kv))
            names[f"{block}.to_v"] = (f"{block}.qkv", (q + kv, q + 2 * kv))
            names[f"{block}.to_out.0"] = f"{block}.out"
    return names


# -- layers ----------------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """RMS norm computed in float32 whatever the activations' dtype."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


# -- position and time ------------------------------------------------------------------------------------------


def timestep_features(t: torch.Tensor, dim: int = FREQUENCY_DIM) -> torch.Tensor:
    """``[cos | sin]`` of ``t * 10000^(-i / (dim/2))``, float32 ``[B, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


def rope_angles(ids: torch.Tensor, axes_dims: tuple[int, ...], theta: float = ROPE_THETA) -> torch.Tensor:
    """The rotations ``[L, head_dim/2]`` (complex64, unit length) for position ids ``[L, 3]``: each axis its own
    frequencies over its share of the head's channel pairs. Angles are rounded to float32 before cos/sin, as
    the reference computes them."""
    parts = []
    for axis, d in enumerate(axes_dims):
        inv = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64, device=ids.device) / d)
        parts.append((ids[:, axis].double()[:, None] * inv[None]).float())
    angles = torch.cat(parts, dim=-1)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rope(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved channel pairs of ``x`` ``[B, L, heads, d]`` by ``rotation`` ``[B or 1, L, d/2]``
    (a complex multiply, in float32)."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * rotation[:, :, None]).flatten(-2).to(x.dtype)


def position_ids(cap_len: int, grid: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Position ids ``[L, 3]`` of the padded caption and of the padded image tokens.

    Caption token ``i`` (pad tokens included) is ``(1 + i, 0, 0)``; image patch ``(h, w)`` is
    ``(cap_len + 1, h, w)`` with ``cap_len`` the padded caption length; the image's pad tokens are ``(0, 0, 0)``.
    """
    cap = torch.zeros(cap_len, 3, dtype=torch.long, device=device)
    cap[:, 0] = torch.arange(1, cap_len + 1, device=device)
    h, w = grid
    img_len = h * w
    img = torch.zeros(img_len + (-img_len) % SEQ_MULTIPLE, 3, dtype=torch.long, device=device)
    img[:img_len, 0] = cap_len + 1
    img[:img_len, 1] = torch.arange(h, device=device).repeat_interleave(w)
    img[:img_len, 2] = torch.arange(w, device=device).repeat(h)
    return cap, img


# -- blocks -----------------------------------------------------------------------------------------------------


class Attention(nn.Module):
    """Self-attention with one fused ``qkv`` projection, grouped key/value heads and q/k RMS norm per head."""

    def __init__(self, config: ZImageConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = config.n_heads, config.n_kv_heads, config.head_dim
        self.qkv = Linear(config.dim, (config.n_heads + 2 * config.n_kv_heads) * config.head_dim, bias=False)
        self.out = Linear(config.n_heads * config.head_dim, config.dim, bias=False)
        self.q_norm = RMSNorm(config.head_dim, config.norm_eps)
        self.k_norm = RMSNorm(config.head_dim, config.norm_eps)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        d = self.head_dim
        q, k, v = self.qkv(x).split([self.n_heads * d, self.n_kv * d, self.n_kv * d], dim=-1)
        q = apply_rope(self.q_norm(q.unflatten(-1, (self.n_heads, d))), rope)
        k = apply_rope(self.k_norm(k.unflatten(-1, (self.n_kv, d))), rope)
        v = v.unflatten(-1, (self.n_kv, d))
        if self.n_kv != self.n_heads:
            k = k.repeat_interleave(self.n_heads // self.n_kv, dim=2)
            v = v.repeat_interleave(self.n_heads // self.n_kv, dim=2)
        # The core's kernels: ComfyUI's on a CPU (so a CPU run matches ComfyUI's floats), fused SDPA elsewhere.
        return self.out(unet_attention(q.flatten(2), k.flatten(2), v.flatten(2), self.n_heads))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = Linear(dim, hidden, bias=False)
        self.w2 = Linear(hidden, dim, bias=False)
        self.w3 = Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class ZImageBlock(nn.Module):
    """Attention and feed-forward, each between two RMS norms; with ``modulated``, scaled and ``tanh``-gated by
    four vectors from the timestep embedding (the caption refiner's blocks have none)."""

    def __init__(self, config: ZImageConfig, modulated: bool) -> None:
        super().__init__()
        dim, eps = config.dim, config.norm_eps
        self.attention = Attention(config)
        self.feed_forward = FeedForward(dim, config.ffn_dim)
        self.attention_norm1 = RMSNorm(dim, eps)
        self.attention_norm2 = RMSNorm(dim, eps)
        self.ffn_norm1 = RMSNorm(dim, eps)
        self.ffn_norm2 = RMSNorm(dim, eps)
        self.adaLN_modulation = nn.Sequential(Linear(config.adaln_dim, 4 * dim)) if modulated else None

    def forward(self, x: torch.Tensor, rope: torch.Tensor,
                adaln: torch.Tensor | None = None) -> torch.Tensor:
        if self.adaLN_modulation is None:
            x = x + self.attention_norm2(self.attention(self.attention_norm1(x), rope))
            return x + self.ffn_norm2(self.feed_forward(self.ffn_norm1(x)))
        scale_msa, gate_msa, scale_mlp, gate_mlp = self.adaLN_modulation(adaln).unsqueeze(1).chunk(4, dim=2)
        y = self.attention(self.attention_norm1(x) * (1 + scale_msa), rope)
        x = x + gate_msa.tanh() * self.attention_norm2(y)
        y = self.feed_forward(self.ffn_norm1(x) * (1 + scale_mlp))
        return x + gate_mlp.tanh() * self.ffn_norm2(y)


class FinalLayer(nn.Module):
    def __init__(self, config: ZImageConfig) -> None:
        super().__init__()
        self.linear = Linear(config.dim, config.patch_size ** 2 * config.in_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), Linear(config.adaln_dim, config.dim))

    def forward(self, x: torch.Tensor, adaln: torch.Tensor) -> torch.Tensor:
        scale = 1 + self.adaLN_modulation(adaln).unsqueeze(1)
        return self.linear(F.layer_norm(x, (x.shape[-1],), eps=1e-6) * scale)


class TimestepEmbedder(nn.Module):
    def __init__(self, config: ZImageConfig) -> None:
        super().__init__()
        self.mlp = nn.Sequential(Linear(FREQUENCY_DIM, config.time_mid_dim), nn.SiLU(),
                                 Linear(config.time_mid_dim, config.adaln_dim))

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.mlp(timestep_features(t).to(dtype))


class ZImageModel(nn.Module):
    """``forward(x [B, 16, H, W], t [B] (1 - sigma), cap [B, L, cap_feat_dim]) -> output [B, 16, H, W]``."""

    def __init__(self, config: ZImageConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.x_embedder = Linear(config.patch_size ** 2 * config.in_channels, dim)
        self.cap_embedder = nn.Sequential(RMSNorm(config.cap_feat_dim, config.norm_eps), Linear(config.cap_feat_dim, dim))
        self.t_embedder = TimestepEmbedder(config)
        self.x_pad_token = nn.Parameter(torch.zeros(1, dim))
        self.cap_pad_token = nn.Parameter(torch.zeros(1, dim))
        self.noise_refiner = nn.ModuleList(ZImageBlock(config, True) for _ in range(config.n_refiner_layers))
        self.context_refiner = nn.ModuleList(ZImageBlock(config, False) for _ in range(config.n_refiner_layers))
        self.layers = nn.ModuleList(ZImageBlock(config, True) for _ in range(config.n_layers))
        self.final_layer = FinalLayer(config)
        self.compute_dtype: torch.dtype | None = None  # None: the weights' dtype

    @staticmethod
    def _pad(tokens: torch.Tensor, pad_token: torch.Tensor) -> torch.Tensor:
        extra = (-tokens.shape[1]) % SEQ_MULTIPLE
        if not extra:
            return tokens
        pad = pad_token.to(tokens.device, tokens.dtype).expand(tokens.shape[0], extra, -1)
        return torch.cat([tokens, pad], dim=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cap: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        dtype = self.compute_dtype or self.x_embedder.weight.dtype
        b, c, height, width = x.shape
        p = cfg.patch_size
        # Sizes that are not a multiple of the patch are padded at the edge (as ComfyUI's pad_to_patch_size
        # does) and cut off again below.
        pad_h, pad_w = (-height) % p, (-width) % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="circular")
        gh, gw = x.shape[2] // p, x.shape[3] // p
        patches = x.to(dtype).reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, p * p * c)
        t = t.reshape(-1).to(x.device)
        if t.shape[0] != b:
            t = t.expand(b)
        adaln = self.t_embedder(t * TIME_SCALE, dtype)
        cap = self._pad(self.cap_embedder(cap.to(x.device, dtype)), self.cap_pad_token)
        img = self._pad(self.x_embedder(patches), self.x_pad_token)
        cap_ids, img_ids = position_ids(cap.shape[1], (gh, gw), x.device)
        cap_rope = rope_angles(cap_ids, cfg.axes_dims)[None]
        img_rope = rope_angles(img_ids, cfg.axes_dims)[None]
        for block in self.context_refiner:
            cap = block(cap, cap_rope)
        for block in self.noise_refiner:
            img = block(img, img_rope, adaln)
        # One stream, image first: attention without a mask is blind to the order (rotary positions are ids).
        hidden = torch.cat([img, cap], dim=1)
        rope = torch.cat([img_rope, cap_rope], dim=1)
        for block in self.layers:
            hidden = block(hidden, rope, adaln)
        out = self.final_layer(hidden[:, : gh * gw], adaln)
        out = out.reshape(b, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, gh * p, gw * p)
        return out[:, :, :height, :width]

    def activation_bytes(self, input_shape: tuple[int, ...], dtype: torch.dtype, text_len: int = 512,
                         device: torch.device | str = "cuda") -> int:
        """Working memory of one forward on ``input_shape`` ``[B, C, H, W]`` with a ``text_len``-token caption.

        Per token of the joint sequence (padded image patches and caption), the larger of the attention's peak
        (residual, normed input, fused q/k/v, their rotated copies and the output: about ten ``dim``-wide vectors)
        and the feed-forward's (three ``dim``-wide and two ``ffn_dim``-wide), plus the rotary tables, plus the
        score chunk the core's attention holds on ``device`` (none where it runs fused).
        Measured on a CPU in float32 (dim 1920, ffn 5120, 15 heads): with fused attention the process's peak grew
        76.5 KB per token between 2336 and 6432 tokens (this estimate: 77.8 KB); with ComfyUI's CPU kernel the
        peak rose 3.60 GB at 6432 tokens (this estimate: 3.66 GB).
        """
        cfg = self.config
        b, _, height, width = input_shape
        img = -(-height // cfg.patch_size) * -(-width // cfg.patch_size)
        tokens = img + (-img) % SEQ_MULTIPLE + text_len + (-text_len) % SEQ_MULTIPLE
        item = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 4
        per_token = max(10 * cfg.dim, 3 * cfg.dim + 2 * cfg.ffn_dim) * item + cfg.head_dim * 8
        scores = score_bytes(b * cfg.n_heads, tokens, tokens, dtype, device)
        return int(b * tokens * per_token + b * text_len * cfg.cap_feat_dim * 4 + scores)
