"""Style models (ComfyUI's STYLE_MODEL): the T2I-Adapter style adapter, which turns a CLIP vision encoding into
extra text-conditioning tokens, and the recognition of Flux Redux files (a family Hearth does not have).

:class:`StyleAdapter` is ComfyUI's ``comfy.t2i_adapter.adapter.StyleAdapter`` (TencentARC's
``t2iadapter_style_sd14v1``): learned style tokens appended to the image encoder's last hidden state, a few
pre-norm transformer blocks (OpenAI CLIP's, quick GELU), the style tokens' outputs normed and projected to the
text width. ComfyUI builds it with fixed sizes (1024 wide, 8 heads, 3 layers, 8 tokens, 768 out); Hearth reads the
sizes from the shapes (heads from ``hearth.style_model.config`` metadata, else 8), so the tiny test file loads too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .clip_text import ResidualAttentionBlock

CONFIG_METADATA_KEY = "hearth.style_model.config"
DEFAULT_HEADS = 8


class UnsupportedStyleModelError(ValueError):
    """A style_models file Hearth cannot run: Flux Redux, or no style model at all."""


@dataclass(frozen=True)
class StyleAdapterConfig:
    width: int = 1024
    context_dim: int = 768
    heads: int = DEFAULT_HEADS
    layers: int = 3
    tokens: int = 8


class _Block(ResidualAttentionBlock):
    """OpenAI CLIP's residual attention block on ``[L, N, D]`` (sequence first, as ``nn.MultiheadAttention``)."""

    def __init__(self, width: int, heads: int):
        super().__init__(width, nn.MultiheadAttention(width, heads))

    def attend(self, h: torch.Tensor) -> torch.Tensor:
        return self.attn(h, h, h, need_weights=False)[0]


class StyleAdapter(nn.Module):
    """``forward(hidden [N, tokens_in, width]) -> [N, tokens, context_dim]``: the style tokens after attention."""

    def __init__(self, config: StyleAdapterConfig):
        super().__init__()
        self.config = config
        scale = config.width ** -0.5
        self.transformer_layes = nn.Sequential(*[_Block(config.width, config.heads) for _ in range(config.layers)])
        self.style_embedding = nn.Parameter(torch.randn(1, config.tokens, config.width) * scale)
        self.ln_post = nn.LayerNorm(config.width)
        self.ln_pre = nn.LayerNorm(config.width)
        self.proj = nn.Parameter(scale * torch.randn(config.width, config.context_dim))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        style = self.style_embedding.expand(hidden.shape[0], -1, -1).to(hidden.dtype)
        x = self.ln_pre(torch.cat([hidden, style], dim=1)).permute(1, 0, 2)
        x = self.transformer_layes(x).permute(1, 0, 2)
        return self.ln_post(x[:, -self.config.tokens:, :]) @ self.proj


def config_from_state(sd: Mapping[str, torch.Tensor], metadata: Mapping[str, str], source: str) -> StyleAdapterConfig:
    """The adapter a ``style_embedding`` file holds, from its shapes (and heads from its metadata)."""
    _, tokens, width = sd["style_embedding"].shape
    layers = 1 + max((int(m.group(1)) for k in sd if (m := re.match(r"transformer_layes\.(\d+)\.", k))), default=-1)
    if "proj" not in sd or layers == 0:
        raise UnsupportedStyleModelError(f"{source}: a style_embedding without its projection or transformer "
                                         f"layers; the file is incomplete")
    heads = int(json.loads(metadata.get(CONFIG_METADATA_KEY, "{}")).get("heads", DEFAULT_HEADS))
    if width % heads:
        raise UnsupportedStyleModelError(f"{source}: width {width} does not split into {heads} attention heads")
    return StyleAdapterConfig(width=width, context_dim=sd["proj"].shape[1], heads=heads, layers=layers, tokens=tokens)


def kind_of(keys: Mapping[str, Any], source: str) -> str:
    """``"t2i_style"`` for a T2I style adapter; Flux Redux and anything else are refused by name."""
    if "style_embedding" in keys:
        return "t2i_style"
    if "redux_down.weight" in keys:
        raise UnsupportedStyleModelError(f"{source}: a Flux Redux style model; it conditions Flux models, a family "
                                         f"Hearth does not have. StyleModelLoader runs the T2I-Adapter style model "
                                         f"(t2iadapter_style_sd14v1) for SD1.x")
    raise UnsupportedStyleModelError(f"{source}: not a style model (neither style_embedding nor redux_down keys); "
                                     f"models/style_models holds T2I-Adapter style files")


class StyleModel:
    """STYLE_MODEL: ``get_cond(clip_vision_output) -> [N, tokens, context_dim]`` (ComfyUI's StyleModel). It runs on
    the CPU in float32, where ComfyUI runs it too: a few small layers over the encoder's output."""

    def __init__(self, model: StyleAdapter, name: str = "style model") -> None:
        self.model = model
        self.name = name

    def get_cond(self, clip_vision_output: Any) -> torch.Tensor:
        hidden = getattr(clip_vision_output, "last_hidden_state", None)
        if not isinstance(hidden, torch.Tensor) or hidden.ndim != 3:
            raise ValueError("StyleModelApply: clip_vision_output has no last_hidden_state [B, tokens, width]; "
                             "connect a CLIPVisionEncode output")
        width = self.model.config.width
        if hidden.shape[-1] != width:
            raise ValueError(f"StyleModelApply: the CLIP vision encoding is {hidden.shape[-1]} wide, {self.name} takes "
                             f"{width}: encode with the CLIP vision model it was trained with (ViT-L/14 for the "
                             f"T2I style adapter)")
        with torch.no_grad():
            return self.model(hidden.float().cpu())

    def __repr__(self) -> str:
        return f"<StyleModel {self.name}>"
