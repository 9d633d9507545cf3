"""OpenCLIP text encoders (ViT-H for SD2, ViT-bigG for SDXL) in the ``open_clip`` parameter layout.

SD2 stores it under ``cond_stage_model.model.*``, SDXL under ``conditioner.embedders.1.model.*`` (the refiner
under ``conditioner.embedders.0.model.*``): ``token_embedding``, ``positional_embedding``,
``transformer.resblocks.N`` with packed ``attn.in_proj_weight``, ``ln_final`` and ``text_projection`` (applied as
``x @ text_projection``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .clip_text import (
    TextEncoderConfig,
    TextEncoderOutput,
    activation,
    causal_attention,
    embedding,
    normal_init,
    select_output,
)
from .ops import cast_to, compute_dtype_of


class _Attention(nn.Module):
    """Self-attention with q, k and v packed in one ``in_proj`` (``nn.MultiheadAttention``'s parameter names)."""

    def __init__(self, c: TextEncoderConfig):
        super().__init__()
        self.heads = c.heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * c.width, c.width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * c.width))
        self.out_proj = nn.Linear(c.width, c.width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = cast_to(self.in_proj_weight, x), cast_to(self.in_proj_bias, x)
        q, k, v = nn.functional.linear(x, weight, bias).chunk(3, dim=-1)
        return self.out_proj(causal_attention(q, k, v, self.heads))


class _MLP(nn.Module):
    def __init__(self, c: TextEncoderConfig):
        super().__init__()
        self.c_fc = nn.Linear(c.width, c.intermediate)
        self.act = activation(c.activation)
        self.c_proj = nn.Linear(c.intermediate, c.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


class _ResidualBlock(nn.Module):
    def __init__(self, c: TextEncoderConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.width, eps=c.eps)
        self.attn = _Attention(c)
        self.ln_2 = nn.LayerNorm(c.width, eps=c.eps)
        self.mlp = _MLP(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, c: TextEncoderConfig):
        super().__init__()
        self.resblocks = nn.ModuleList(_ResidualBlock(c) for _ in range(c.layers))


class OpenCLIPTextEncoder(nn.Module):
    """OpenCLIP text tower; ``logit_scale`` is unused for text encoding but present in checkpoints."""

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.config = config
        self.token_embedding = embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(normal_init(config.max_positions, config.width, std=0.01))
        self.transformer = _Transformer(config)
        self.ln_final = nn.LayerNorm(config.width, eps=config.eps)
        proj = config.projection_dim or config.width
        self.text_projection = nn.Parameter(normal_init(config.width, proj, std=config.width**-0.5))
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))

    def forward(
        self,
        tokens: torch.Tensor,
        input_embeds: torch.Tensor | None = None,
        layer: int | None = None,
        norm_hidden: bool = False,
    ) -> TextEncoderOutput:
        """Encode ``tokens`` ``[B, T]``; see :meth:`hearth_sd.clip_text.CLIPTextEncoder.forward`."""
        if input_embeds is None:
            input_embeds = self.token_embedding(tokens)
        n = tokens.shape[1]
        dtype = compute_dtype_of(self)
        x = input_embeds.to(dtype) + self.positional_embedding[:n].to(dtype)
        states = []
        for block in self.transformer.resblocks:
            x = block(x)
            states.append(x)
        final = self.ln_final(x)
        pooled = final[torch.arange(final.shape[0], device=final.device), tokens.argmax(dim=-1)]
        # x @ P computed as ComfyUI computes it, a Linear on the contiguous transpose: the same product, but a plain
        # matmul with P takes another GEMM path that rounds differently (SDXL's pooled text 4e-6 off).
        pooled = F.linear(pooled, self.text_projection.to(pooled.dtype).t().contiguous())
        hidden = select_output(states, final, self.ln_final, layer, norm_hidden)
        return TextEncoderOutput(hidden, pooled)
