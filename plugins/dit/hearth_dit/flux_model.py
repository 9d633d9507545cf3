"""The Flux.1 transformer (dev and schnell), in the key layout of black-forest-labs' published single files.

A latent ``[B, 16, H, W]`` is cut into 2x2 patches (64 features per token); the T5 text tokens and the image tokens
run through ``depth`` double-stream blocks (each stream its own weights, one joint attention over both) and then
``depth_single_blocks`` single-stream blocks over the concatenated sequence (attention and MLP from one fused
``linear1``, merged back by ``linear2``). Every block is modulated by one vector: the sum of the timestep's, the
CLIP-L pooled text's and (dev only) the distilled guidance's embeddings. Queries and keys are RMS-normed per head
and rotated by a 3-axis RoPE over the tokens' ``(index, row, column)`` ids (text tokens have id 0). The network
predicts the flow velocity (noise - clean).

Layers cast their weights to the activations' dtype as they run (:class:`hearth_dit.dit_common.Linear`), so a
bf16 or fp8 file stays in its stored dtype while a CPU computes in float32.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.attention import score_bytes, unet_attention

from .dit_common import Linear, timestep_embedding

PATCH = 2
TIME_FEATURES = 256
CONFIG_METADATA_KEY = "hearth.flux.config"  # tiny files record what the keys cannot tell (the RoPE axes)
PREFIXES = ("", "model.diffusion_model.")  # diffusion_models files are bare; a checkpoint nests the transformer


@dataclass(frozen=True)
class FluxConfig:
    """Flux.1's hyper-parameters; the defaults are Flux.1 dev's (12B)."""

    in_channels: int = 16
    out_channels: int = 16
    vec_in_dim: int = 768
    context_in_dim: int = 4096
    hidden_size: int = 3072
    mlp_ratio: float = 4.0
    num_heads: int = 24
    depth: int = 19
    depth_single_blocks: int = 38
    axes_dim: tuple[int, int, int] = (16, 56, 56)
    theta: float = 10000.0
    qkv_bias: bool = True
    guidance_embed: bool = True

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"Flux: hidden size {self.hidden_size} does not split into {self.num_heads} heads")
        if sum(self.axes_dim) != self.head_dim or any(d % 2 for d in self.axes_dim):
            raise ValueError(f"Flux: RoPE axes {list(self.axes_dim)} must be even and sum to the head size "
                             f"{self.head_dim}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def full_size_config(variant: str = "dev") -> FluxConfig:
    """The shape of the published Flux.1 ``dev`` (guidance-distilled) or ``schnell`` transformer (for benches)."""
    if variant not in ("dev", "schnell"):
        raise ValueError(f"Flux.1 variant {variant!r}: choose dev or schnell")
    return FluxConfig(guidance_embed=variant == "dev")


def _default_axes(head_dim: int) -> tuple[int, int, int]:
    # The published models split a head of 128 as 16 (index) + 56 (rows) + 56 (columns): 1/8 for the first axis.
    first = 2 * (head_dim // 16)
    rest = head_dim - first
    return first, rest // 2, rest - rest // 2


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str] | None = None,
                       source: str = "state dict") -> FluxConfig:
    """The config of a Flux state dict (bare, published key names) from its shapes and, for the RoPE axes of a
    model whose head is not 128 wide, the ``hearth.flux.config`` metadata Hearth's tiny files carry."""
    try:
        hidden, in_features = shapes["img_in.weight"]
        out_features = shapes["final_layer.linear.weight"][0]
        head_dim = shapes["double_blocks.0.img_attn.norm.query_norm.scale"][0]
        config = FluxConfig(
            in_channels=in_features // PATCH**2, out_channels=out_features // PATCH**2,
            vec_in_dim=shapes["vector_in.in_layer.weight"][1], context_in_dim=shapes["txt_in.weight"][1],
            hidden_size=hidden, mlp_ratio=shapes["double_blocks.0.img_mlp.0.weight"][0] / hidden,
            num_heads=hidden // head_dim,
            depth=1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("double_blocks.")),
            depth_single_blocks=1 + max((int(k.split(".")[1]) for k in shapes if k.startswith("single_blocks.")),
                                        default=-1),
            axes_dim=tuple(json.loads((metadata or {}).get(CONFIG_METADATA_KEY, "{}")).get("axes_dim")
                           or _default_axes(head_dim)),
            qkv_bias="double_blocks.0.img_attn.qkv.bias" in shapes,
            guidance_embed="guidance_in.in_layer.weight" in shapes)
    except KeyError as exc:
        raise ValueError(f"{source}: not a Flux.1 transformer ({exc.args[0]} is missing)") from None
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return config


# -- position -------------------------------------------------------------------------------------------------------


def rope_angles(ids: torch.Tensor, axes_dim: tuple[int, ...], theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin ``[B, L, head_dim/2]`` (float32) of the tokens' ids ``[B, L, 3]``: axis ``a`` turns its
    ``axes_dim[a] / 2`` channel pairs by ``id * theta^(-2i / axes_dim[a])``."""
    parts = []
    for axis, dim in enumerate(axes_dim):
        omega = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64, device=ids.device) / dim)
        parts.append(ids[..., axis].double()[..., None] * omega)
    angles = torch.cat(parts, dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the interleaved channel pairs of ``x`` ``[B, L, heads, d]`` by angles ``[B, L, d/2]``."""
    pairs = x.float().unflatten(-1, (-1, 2))
    real, imag = pairs[..., 0], pairs[..., 1]
    cos, sin = cos[:, :, None], sin[:, :, None]
    return torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1).flatten(-2).to(x.dtype)


def image_ids(batch: int, rows: int, cols: int, device: torch.device, index: int = 0, row_offset: int = 0,
              col_offset: int = 0) -> torch.Tensor:
    """``[B, rows*cols, 3]`` ids of image patches: (index, row + row_offset, column + col_offset); the latent's own
    patches have index 0 and no offset, Kontext's reference images their own index and place."""
    ids = torch.zeros(rows, cols, 3, device=device)
    ids[..., 0] = index
    ids[..., 1] = torch.arange(rows, device=device, dtype=torch.float32)[:, None] + row_offset
    ids[..., 2] = torch.arange(cols, device=device, dtype=torch.float32)[None, :] + col_offset
    return ids.reshape(1, rows * cols, 3).expand(batch, -1, -1)


REFERENCE_METHODS = ("offset", "index", "uxo")


def reference_places(sizes: list[tuple[int, int]], rows: int, cols: int, method: str = "offset"
                     ) -> list[tuple[int, int, int]]:
    """``(index, row offset, column offset)`` in latent pixels of each reference latent of ``sizes`` (its height
    and width) beside a latent of ``rows x cols`` patches, by ComfyUI's methods for Flux Kontext: ``offset`` (all
    index 1, packed along the shorter side of what is placed so far), ``index`` (index 1, 2, ... at the origin),
    ``uxo`` (index 0, diagonally past the latent)."""
    if method not in REFERENCE_METHODS:
        raise ValueError(f"Flux: reference_latents_method {method!r} is not one of {', '.join(REFERENCE_METHODS)}")
    places, h, w = [], 0, 0
    for number, (ref_h, ref_w) in enumerate(sizes, start=1):
        if method == "index":
            places.append((number, 0, 0))
        elif method == "uxo":
            places.append((0, rows * PATCH + h, cols * PATCH + w))
            h, w = h + ref_h, w + ref_w
        else:
            row_off, col_off = (0, w) if ref_h + h > ref_w + w else (h, 0)
            places.append((1, row_off, col_off))
            h, w = max(h, ref_h + row_off), max(w, ref_w + col_off)
    return places


def patchify(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """``[B, C, H, W]`` -> ``[B, rows*cols, C*4]`` 2x2 patches, ``rows``, ``cols``; sizes that are not a multiple of
    the patch wrap around (ComfyUI pads circularly) and are cut off again after the model."""
    b, c, height, width = x.shape
    pad_h, pad_w = (-height) % PATCH, (-width) % PATCH
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="circular")
    rows, cols = x.shape[2] // PATCH, x.shape[3] // PATCH
    return x.reshape(b, c, rows, PATCH, cols, PATCH).permute(0, 2, 4, 1, 3, 5).reshape(b, rows * cols, -1), rows, cols


# -- layers ---------------------------------------------------------------------------------------------------------


def _layer_norm(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm without affine parameters (every norm of Flux), in float32."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=1e-6).to(x.dtype)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    # addcmul, as ComfyUI's apply_mod: a fused multiply-add rounds differently from a product and a sum.
    return torch.addcmul(shift, _layer_norm(x), 1 + scale)


class MLPEmbedder(nn.Module):
    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.in_layer = Linear(in_dim, hidden)
        self.out_layer = Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_layer(F.silu(self.in_layer(x)))


class RMSNorm(nn.Module):
    """RMS norm whose weight is named ``scale``, as the published files name it."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch's fused kernel in the activations' dtype, as ComfyUI normalizes q and k.
        return F.rms_norm(x, self.scale.shape, self.scale.to(x.dtype), 1e-6)


class QKNorm(nn.Module):
    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.query_norm = RMSNorm(head_dim)
        self.key_norm = RMSNorm(head_dim)


class Modulation(nn.Module):
    """``count`` vectors of ``dim`` (shift, scale, gate, ...) from the conditioning vector."""

    def __init__(self, dim: int, count: int) -> None:
        super().__init__()
        self.count = count
        self.lin = Linear(dim, count * dim)

    def forward(self, vec: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # On [B, 1, dim], as ComfyUI: the matrix product of another shape may round differently.
        return self.lin(F.silu(vec[:, None, :])).chunk(self.count, dim=-1)


class StreamAttention(nn.Module):
    """One stream's fused q/k/v projection, per-head q/k norm and output projection (``proj``)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = Linear(dim, dim * 3, bias=qkv_bias)
        self.norm = QKNorm(dim // num_heads)
        self.proj = Linear(dim, dim)

    def qkv_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (normed), k (normed) and v of ``x``, each ``[B, L, heads, d]``: the token-major layout attention takes."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, -1)).unbind(2)
        return self.norm.query_norm(q), self.norm.key_norm(k), v


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]
               ) -> torch.Tensor:
    """Joint attention of rotated ``[B, L, heads, d]`` queries and keys -> ``[B, L, heads * d]``, through core's
    ComfyUI-matching kernels (ComfyUI's Flux attends with its optimized_attention: sub-quadratic on a CPU)."""
    heads = q.shape[2]
    q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    return unet_attention(q.flatten(2), k.flatten(2), v.flatten(2), heads)


def _mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(Linear(dim, hidden), nn.GELU(approximate="tanh"), Linear(hidden, dim))


class DoubleStreamBlock(nn.Module):
    """Image and text streams, each with its own modulation, attention projections and MLP, attending jointly."""

    def __init__(self, config: FluxConfig) -> None:
        super().__init__()
        dim = config.hidden_size
        self.img_mod = Modulation(dim, 6)
        self.img_attn = StreamAttention(dim, config.num_heads, config.qkv_bias)
        self.img_mlp = _mlp(dim, config.mlp_hidden)
        self.txt_mod = Modulation(dim, 6)
        self.txt_attn = StreamAttention(dim, config.num_heads, config.qkv_bias)
        self.txt_mlp = _mlp(dim, config.mlp_hidden)

    def forward(self, img: torch.Tensor, txt: torch.Tensor, vec: torch.Tensor,
                rope: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        i_shift, i_scale, i_gate, i_shift2, i_scale2, i_gate2 = self.img_mod(vec)
        t_shift, t_scale, t_gate, t_shift2, t_scale2, t_gate2 = self.txt_mod(vec)
        iq, ik, iv = self.img_attn.qkv_heads(_modulate(img, i_shift, i_scale))
        tq, tk, tv = self.txt_attn.qkv_heads(_modulate(txt, t_shift, t_scale))
        # The text tokens come first in the joint sequence (their RoPE ids are first too).
        attn = _attention(torch.cat((tq, iq), 1), torch.cat((tk, ik), 1), torch.cat((tv, iv), 1), rope)
        txt_attn, img_attn = attn[:, : txt.shape[1]], attn[:, txt.shape[1]:]
        img = img + i_gate * self.img_attn.proj(img_attn)
        img = img + i_gate2 * self.img_mlp(_modulate(img, i_shift2, i_scale2))
        txt = txt + t_gate * self.txt_attn.proj(txt_attn)
        txt = txt + t_gate2 * self.txt_mlp(_modulate(txt, t_shift2, t_scale2))
        return img, txt


class SingleStreamBlock(nn.Module):
    """One stream over text and image tokens: ``linear1`` gives q, k, v and the MLP's input at once."""

    def __init__(self, config: FluxConfig) -> None:
        super().__init__()
        dim = config.hidden_size
        self.hidden_size, self.mlp_hidden, self.num_heads = dim, config.mlp_hidden, config.num_heads
        self.linear1 = Linear(dim, dim * 3 + config.mlp_hidden)
        self.linear2 = Linear(dim + config.mlp_hidden, dim)
        self.norm = QKNorm(config.head_dim)
        self.modulation = Modulation(dim, 3)

    def forward(self, x: torch.Tensor, vec: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        shift, scale, gate = self.modulation(vec)
        qkv, mlp = self.linear1(_modulate(x, shift, scale)).split([3 * self.hidden_size, self.mlp_hidden], dim=-1)
        q, k, v = qkv.unflatten(-1, (3, self.num_heads, -1)).unbind(2)
        attn = _attention(self.norm.query_norm(q), self.norm.key_norm(k), v, rope)
        return x + gate * self.linear2(torch.cat((attn, F.gelu(mlp, approximate="tanh")), dim=-1))


class LastLayer(nn.Module):
    def __init__(self, config: FluxConfig) -> None:
        super().__init__()
        self.linear = Linear(config.hidden_size, PATCH * PATCH * config.out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), Linear(config.hidden_size, 2 * config.hidden_size))

    def forward(self, x: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(vec[:, None, :]).chunk(2, dim=-1)  # shift first: the published order
        return self.linear(_modulate(x, shift, scale))


# -- the model ------------------------------------------------------------------------------------------------------


class FluxTransformer(nn.Module):
    """``forward(x [B, C, H, W], t [B] (sigma, 0..1), context [B, L, context_in_dim], y [B, vec_in_dim],
    guidance [B] or None) -> velocity [B, C, H, W]``. Without ``guidance`` a dev model adds no guidance embedding
    (as ComfyUI, where FluxDisableGuidance sets it to None)."""

    def __init__(self, config: FluxConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.img_in = Linear(config.in_channels * PATCH * PATCH, dim)
        self.time_in = MLPEmbedder(TIME_FEATURES, dim)
        self.vector_in = MLPEmbedder(config.vec_in_dim, dim)
        if config.guidance_embed:
            self.guidance_in = MLPEmbedder(TIME_FEATURES, dim)
        self.txt_in = Linear(config.context_in_dim, dim)
        self.double_blocks = nn.ModuleList(DoubleStreamBlock(config) for _ in range(config.depth))
        self.single_blocks = nn.ModuleList(SingleStreamBlock(config) for _ in range(config.depth_single_blocks))
        self.final_layer = LastLayer(config)
        self.compute_dtype: torch.dtype | None = None  # None: the weights' dtype

    def _dtype(self) -> torch.dtype:
        if self.compute_dtype is not None:
            return self.compute_dtype
        dtype = self.img_in.weight.dtype
        return dtype if dtype.itemsize > 1 else torch.bfloat16

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, y: torch.Tensor | None = None,
                guidance: torch.Tensor | None = None, references: list[torch.Tensor] | None = None,
                reference_method: str = "offset") -> torch.Tensor:
        cfg = self.config
        dtype = self._dtype()
        b, _, height, width = x.shape
        img, rows, cols = patchify(x)
        ids = image_ids(b, rows, cols, x.device)
        tokens = img.shape[1]
        # Flux Kontext: reference latents join the image tokens, placed by their ids; only the latent's come out.
        places = reference_places([tuple(r.shape[-2:]) for r in references or ()], rows, cols, reference_method)
        for ref, (index, row_off, col_off) in zip(references or (), places, strict=True):
            ref_img, ref_rows, ref_cols = patchify(ref.to(x.device, x.dtype))
            img = torch.cat((img, ref_img), 1)
            ids = torch.cat((ids, image_ids(b, ref_rows, ref_cols, x.device, index, (row_off + PATCH // 2) // PATCH,
                                            (col_off + PATCH // 2) // PATCH)), 1)
        img = self.img_in(img.to(dtype))
        t = t.reshape(-1).to(x.device).expand(b)
        vec = self.time_in(timestep_embedding(t, TIME_FEATURES).to(dtype))
        if cfg.guidance_embed and guidance is not None:  # None: guidance switched off (FluxDisableGuidance)
            g = guidance.reshape(-1).expand(b).to(x.device)
            vec = vec + self.guidance_in(timestep_embedding(g, TIME_FEATURES).to(dtype))
        if y is None:
            y = torch.zeros(b, cfg.vec_in_dim, device=x.device)
        vec = vec + self.vector_in(y[:, : cfg.vec_in_dim].to(x.device, dtype))
        txt = self.txt_in(context.to(x.device, dtype))
        ids = torch.cat((torch.zeros(b, txt.shape[1], 3, device=x.device), ids), 1)
        rope = rope_angles(ids, cfg.axes_dim, cfg.theta)
        for block in self.double_blocks:
            img, txt = block(img, txt, vec, rope)
        joint = torch.cat((txt, img), 1)
        for block in self.single_blocks:
            joint = block(joint, vec, rope)
        out = self.final_layer(joint[:, txt.shape[1]:], vec)[:, :tokens]
        out = out.reshape(b, rows, cols, cfg.out_channels, PATCH, PATCH).permute(0, 3, 1, 4, 2, 5)
        return out.reshape(b, cfg.out_channels, rows * PATCH, cols * PATCH)[:, :, :height, :width]

    def activation_bytes(self, input_shape: tuple[int, ...], dtype: torch.dtype, text_len: int = 512,
                         device: torch.device | str = "cuda") -> int:
        """Working memory of one forward on a latent batch ``[B, C, H, W]`` with ``text_len`` text tokens.

        Per token of the joint sequence, the larger of a double block's peak (the residuals, the modulated input,
        q/k/v with their rotated float32 copies and the attention output: about twelve ``hidden``-wide vectors)
        and a single block's (``linear1``'s output, ``3 * hidden + mlp``, its activated MLP half and the
        concatenation fed to ``linear2``); plus the RoPE tables, the unpatchified output and one compute-dtype copy
        of the largest matrix (``linear1``: bf16 or fp8 weights are cast per layer as they run). Attention is taken
        to run fused (``scaled_dot_product_attention``) except on a CPU, where ComfyUI's sub-quadratic kernel holds
        a chunk of scores per head (:func:`hearth.core.models.attention.score_bytes`).
        """
        cfg = self.config
        b, _, height, width = input_shape
        tokens = -(-height // PATCH) * -(-width // PATCH) + text_len
        item = dtype.itemsize if dtype.is_floating_point else 4
        double = 12 * cfg.hidden_size
        single = 3 * cfg.hidden_size + 3 * cfg.mlp_hidden + 2 * cfg.hidden_size
        per_token = max(double, single) * item + 2 * cfg.hidden_size * 4  # + float32 rotated q and k
        rope = tokens * cfg.head_dim * 8
        scores = score_bytes(b * cfg.num_heads, tokens, tokens, dtype, device)
        cast = cfg.hidden_size * (3 * cfg.hidden_size + cfg.mlp_hidden) * item
        return int(b * tokens * per_token + rope + scores + cast + b * cfg.out_channels * height * width * 12)
