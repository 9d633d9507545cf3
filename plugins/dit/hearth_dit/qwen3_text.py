"""Qwen3 as Z-Image's text encoder: the decoder stack read from the published file, its tokenizer, and the prompt
encoding ComfyUI's ``lumina2`` CLIP type gives a Qwen3-4B file.

The network is Qwen3's (RMSNorm, grouped-query attention with per-head q/k RMS norm, rotary embedding theta 1e6 on
halves of each head, SwiGLU MLP), with the published keys (``model.layers.N.self_attn.q_proj.weight``...). Z-Image
reads the hidden state *before* the last layer (transformers' ``hidden_states[-2]``, ComfyUI's ``layer_idx=-2``),
so the last layer and the final norm are never run. The prompt is wrapped in Qwen's chat template
(``<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n``), not padded, and encoded causally.

The tokenizer is a ``tokenizer.json`` (byte-level BPE) read with the ``tokenizers`` library. Hearth never
downloads it: it is looked for beside the model file (:func:`tokenizer_path_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.attention import text_attention
from hearth.core.models.formats import ModelFormat

FORMAT_NAME = "qwen3"
CHAT_TEMPLATE = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
HIDDEN_LAYER = -2  # the layer Z-Image reads
TOKENIZER_FOLDER = "qwen3_tokenizer"  # text_encoders/qwen3_tokenizer/tokenizer.json serves every Qwen3 file
_SENTINELS = ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
              "model.layers.0.self_attn.q_norm.weight", "model.layers.0.mlp.gate_proj.weight", "model.norm.weight")


def qwen3_formats() -> list[ModelFormat]:
    """A Qwen3 decoder in transformers' layout (ComfyUI's ``qwen_3_4b.safetensors``)."""
    return [ModelFormat(FORMAT_NAME, {key: None for key in _SENTINELS}, "Qwen3 text encoder (Z-Image)",
                        extra={"family": "z-image"})]


@dataclass(frozen=True)
class Qwen3Config:
    vocab_size: int = 151936
    hidden_size: int = 2560
    intermediate_size: int = 9728
    num_layers: int = 36
    num_heads: int = 32
    num_kv_heads: int = 8
    head_dim: int = 128
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0


def full_size_config() -> Qwen3Config:
    """Qwen3-4B's shape (the encoder Z-Image Turbo ships with)."""
    return Qwen3Config()


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], source: str = "state dict") -> Qwen3Config:
    """The config of a Qwen3 state dict (keys under ``model.``) from its shapes."""
    try:
        vocab, hidden = shapes["model.embed_tokens.weight"]
        head_dim = shapes["model.layers.0.self_attn.q_norm.weight"][0]
        heads = shapes["model.layers.0.self_attn.q_proj.weight"][0] // head_dim
        kv_heads = shapes["model.layers.0.self_attn.k_proj.weight"][0] // head_dim
        intermediate = shapes["model.layers.0.mlp.gate_proj.weight"][0]
        layers = 1 + max(int(k.split(".")[2]) for k in shapes if k.startswith("model.layers."))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{source}: not a Qwen3 text encoder ({exc} is missing; Z-Image needs Qwen3-4B, e.g. "
                         f"qwen_3_4b.safetensors)") from None
    return Qwen3Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate, num_layers=layers,
                       num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim)


def state_for_encoder(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The file's state dict with ``model.`` taken off and the unused ``lm_head`` dropped."""
    return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}


# -- the network ------------------------------------------------------------------------------------------------


class Linear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.device, x.dtype)
        return F.linear(x, self.weight.to(x.device, x.dtype), bias)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight.float() * normed).to(x.dtype)


def rope_tables(length: int, head_dim: int, theta: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin ``[L, head_dim]`` (each frequency twice: the halves of a head rotate together)."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim)
    angles = torch.arange(length, device=device).float()[:, None] * inv[None]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


class Qwen3Attention(nn.Module):
    def __init__(self, config: Qwen3Config) -> None:
        super().__init__()
        d, self.heads, self.kv_heads, self.head_dim = config.hidden_size, config.num_heads, config.num_kv_heads, config.head_dim
        self.q_proj = Linear(d, self.heads * self.head_dim, bias=False)
        self.k_proj = Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = Linear(self.heads * self.head_dim, d, bias=False)
        self.q_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
        self.k_norm = RMSNorm(self.head_dim, config.rms_norm_eps)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None
                ) -> torch.Tensor:
        cos, sin = (r[:, None] for r in rope)  # over [B, L, heads, d]
        q = _rotate(self.q_norm(self.q_proj(x).unflatten(-1, (self.heads, self.head_dim))), cos, sin)
        k = _rotate(self.k_norm(self.k_proj(x).unflatten(-1, (self.kv_heads, self.head_dim))), cos, sin)
        v = self.v_proj(x).unflatten(-1, (self.kv_heads, self.head_dim))
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=2)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=2)
        if mask is None:
            # The core's text-encoder kernel: ComfyUI's on a CPU (so a CPU run matches its floats), SDPA elsewhere.
            out = text_attention(q.flatten(2), k.flatten(2), v.flatten(2), self.heads, causal=True)
        else:  # padded batches (not what Z-Image's CLIP encodes): causal and padding mask together
            out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                 attn_mask=mask).transpose(1, 2).flatten(2)
        return self.o_proj(out)


class Qwen3MLP(nn.Module):
    def __init__(self, config: Qwen3Config) -> None:
        super().__init__()
        self.gate_proj = Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Qwen3Layer(nn.Module):
    def __init__(self, config: Qwen3Config) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Qwen3Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = Qwen3MLP(config)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None
                ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen3Encoder(nn.Module):
    """``forward(ids [B, L], mask [B, L] or None, layer) -> hidden state [B, L, hidden]`` after ``layer``
    (negative: counted from the end of transformers' ``hidden_states``, -1 being the final normed output)."""

    def __init__(self, config: Qwen3Config) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Qwen3Layer(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.compute_dtype: torch.dtype | None = None  # None: the weights' dtype

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None, layer: int = HIDDEN_LAYER
                ) -> torch.Tensor:
        cfg = self.config
        count = cfg.num_layers + 1 + layer if layer < 0 else layer  # how many layers to run
        if not 0 <= count <= cfg.num_layers:
            raise ValueError(f"Qwen3: layer {layer} does not exist in a {cfg.num_layers}-layer encoder")
        dtype = self.compute_dtype or self.embed_tokens.weight.dtype
        device = ids.device
        x = F.embedding(ids, self.embed_tokens.weight.to(device)).to(dtype)
        length = ids.shape[1]
        rope = rope_tables(length, cfg.head_dim, cfg.rope_theta, device)
        attn_mask = None
        if mask is not None and not bool(mask.all()):
            # Causal, and no query attends to padding (a fully padded row keeps itself, so softmax stays finite).
            causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
            attn_mask = (causal[None] & mask.bool()[:, None, :]) | torch.eye(length, dtype=torch.bool, device=device)
            attn_mask = attn_mask[:, None]
        for block in self.layers[:count]:
            x = block(x, rope, attn_mask)
        if count == cfg.num_layers:  # transformers' last hidden state is the normed one
            x = self.norm(x)
        return x


# -- the tokenizer ----------------------------------------------------------------------------------------------


def tokenizer_path_for(model_path: str | Path) -> Path:
    """The ``tokenizer.json`` that belongs to a Qwen3 file, or a clear error saying where to put one."""
    model_path = Path(model_path)
    candidates = (model_path.with_name(model_path.stem + ".tokenizer.json"), model_path.with_name("tokenizer.json"),
                  model_path.parent / TOKENIZER_FOLDER / "tokenizer.json")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{model_path.name}: no Qwen3 tokenizer found and Hearth does not download one; put "
                            f"Qwen3's tokenizer.json (from the Qwen/Qwen3-4B repository) at "
                            f"{candidates[0]} or {candidates[2]}")


class Qwen3Tokenizer:
    """Token ids of a prompt wrapped in Qwen's chat template (byte-level BPE from a ``tokenizer.json``)."""

    def __init__(self, path: str | Path, template: str = CHAT_TEMPLATE) -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        try:
            self.tokenizer = Tokenizer.from_file(str(self.path))
        except Exception as exc:  # tokenizers raises a bare Exception for unreadable JSON
            raise ValueError(f"{self.path}: not a tokenizers tokenizer.json ({exc})") from None
        missing = [t for t in SPECIAL_TOKENS if self.tokenizer.token_to_id(t) is None]
        if missing:
            raise ValueError(f"{self.path}: not a Qwen tokenizer (no {', '.join(missing)} token); use Qwen3's "
                             f"tokenizer.json")
        self.template = template
        self.pad = self.tokenizer.token_to_id("<|endoftext|>")

    def __call__(self, text: str) -> list[int]:
        """The ids of ``text`` in the chat template (special tokens recognised, none added)."""
        return self.tokenizer.encode(self.template.format(text), add_special_tokens=False).ids


def encode(encoder: Qwen3Encoder, ids: list[int], device: torch.device, layer: int = HIDDEN_LAYER) -> torch.Tensor:
    """Z-Image's caption features ``[1, L, hidden]``, float32 on the CPU."""
    with torch.no_grad():
        states = encoder(torch.tensor([ids], device=device), None, layer)
    return states.float().cpu()
