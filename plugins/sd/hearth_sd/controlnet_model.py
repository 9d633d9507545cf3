"""The ControlNet network of SD1.x / SD2.x / SDXL (Zhang et al. 2023) in the LDM single-file key layout.

A copy of the UNet's encoder half (``time_embed``, ``label_emb``, ``input_blocks``, ``middle_block``) plus what
makes it a ControlNet: ``input_hint_block`` (the hint image down to the latent's size), one 1x1 ``zero_convs.N``
after every input block and ``middle_block_out``. Its forward returns ComfyUI's control dict ``{"output": [one
residual per input block, in block order], "middle": [the middle residual]}``, which the UNet adds to its skip
connections and middle block (:class:`hearth_sd.unet.ControlResiduals`). This is the network of ComfyUI's
``comfy/cldm/cldm.py`` and of diffusers' ``ControlNetModel``; the hint block's widths are read from the file
(16, 32, 96, 256 in every published ControlNet) so tiny test files can be small.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .checkpoint import encoder_shape
from .controlnet_union import ControlTypeEmbedding, UnionTransformerBlock, union_hint
from .ops import compute_dtype_of
from .unet import (
    TimestepBlock,
    UNetConfig,
    encoder_blocks,
    middle_block,
    time_embedding_layers,
    timestep_embedding,
)

HINT_WIDTHS = (16, 32, 96, 256)  # the hint encoder of every published SD ControlNet


@dataclass(frozen=True)
class ControlNetConfig:
    """Shape of a ControlNet: the UNet encoder it copies, and its hint encoder (``hint_channels`` in: 3 for RGB)."""

    unet: UNetConfig
    hint_channels: int = 3
    hint_widths: tuple[int, ...] = field(default=HINT_WIDTHS)
    union_types: int = 0  # a union ControlNet: how many control types it knows (0: a plain ControlNet)

    @property
    def downscale(self) -> int:
        """How much the hint encoder shrinks the hint: the latent is the hint's size divided by this."""
        return 2 ** (len(self.hint_widths) - 1)


def _hint_block(config: ControlNetConfig) -> nn.Sequential:
    # conv(hint -> w0), then per width step a conv at that width and a stride-2 conv to the next, SiLU between
    # every two, and a last conv to the UNet's width: LDM's numbering (0, 2, 4 ... 14) falls out of this order.
    widths = config.hint_widths
    layers: list[nn.Module] = [nn.Conv2d(config.hint_channels, widths[0], 3, padding=1), nn.SiLU()]
    for here, nxt in zip(widths, widths[1:], strict=False):
        layers += [nn.Conv2d(here, here, 3, padding=1), nn.SiLU(),
                   nn.Conv2d(here, nxt, 3, padding=1, stride=2), nn.SiLU()]
    layers.append(nn.Conv2d(widths[-1], config.unet.model_channels, 3, padding=1))
    return nn.Sequential(*layers)


def _zero_conv(channels: int) -> TimestepBlock:
    return TimestepBlock(nn.Conv2d(channels, channels, 1))


class ControlNetModel(nn.Module):
    """``forward(x, hint, timesteps, context, y=None)`` -> ``{"output": [...], "middle": [...]}`` (unscaled).

    ``x``: the UNet's input ``[B, C, h, w]``; ``hint``: ``[B or 1, hint_channels, h * downscale, w * downscale]``
    in 0..1; ``timesteps``, ``context``, ``y``: as the UNet takes them.
    """

    def __init__(self, config: ControlNetConfig):
        super().__init__()
        self.config = config
        c = config.unet
        ch = c.model_channels
        time_dim = ch * 4
        self.time_embed, label_emb = time_embedding_layers(c)
        if label_emb is not None:
            self.label_emb = label_emb
        self.input_hint_block = _hint_block(config)
        self.input_blocks, self.zero_convs = nn.ModuleList(), nn.ModuleList()
        for block, channels in encoder_blocks(c):
            self.input_blocks.append(block)
            self.zero_convs.append(_zero_conv(channels))
        self.middle_block = middle_block(c, channels)
        self.middle_block_out = _zero_conv(channels)
        if config.union_types:
            self.task_embedding = nn.Parameter(torch.empty(config.union_types, ch))
            self.transformer_layes = nn.Sequential(UnionTransformerBlock(ch))
            self.spatial_ch_projs = nn.Linear(ch, ch)
            self.control_add_embedding = ControlTypeEmbedding(config.union_types, time_dim)

    def forward(self, x: torch.Tensor, hint: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor,
                y: torch.Tensor | None = None, control_type: Sequence[int] | None = None,
                ) -> dict[str, list[torch.Tensor]]:
        """``control_type``: a union ControlNet's type numbers (SetUnionControlNetType); ignored by a plain one."""
        c = self.config.unet
        if (y is None) != (c.adm_in_channels is None):
            raise ValueError("y (the ADM vector) is required exactly when the ControlNet has adm_in_channels")
        dtype = compute_dtype_of(self)
        if timesteps.ndim == 0:
            timesteps = timesteps[None]
        emb = self.time_embed(timestep_embedding(timesteps.expand(x.shape[0]), c.model_channels).to(dtype))
        guided = None
        if self.config.union_types:
            control_type = list(control_type or ())
            if any(not 0 <= n < self.config.union_types for n in control_type):
                raise ValueError(f"control type {control_type} is not one this union ControlNet knows "
                                 f"(0..{self.config.union_types - 1}): pick another in SetUnionControlNetType")
            emb = emb + self.control_add_embedding(control_type, dtype, x.device)
            if control_type:
                guided = union_hint(self, hint.to(dtype), control_type)
        if y is not None:
            emb = emb + self.label_emb(y.to(dtype))
        context = context.to(dtype)
        if guided is None:
            guided = self.input_hint_block(hint.to(dtype))
        h = x.to(dtype)
        outputs = []
        for number, (block, zero_conv) in enumerate(zip(self.input_blocks, self.zero_convs, strict=True)):
            h = block(h, emb, context)
            if number == 0:
                h = h + guided
            outputs.append(zero_conv(h, emb, context))
        h = self.middle_block(h, emb, context)
        return {"output": outputs, "middle": [self.middle_block_out(h, emb, context)]}


def hint_shape(sd: Mapping[str, torch.Tensor]) -> tuple[int, tuple[int, ...]]:
    """(hint channels, hint encoder widths) of an LDM-layout ControlNet state dict."""
    convs = sorted(int(m.group(1)) for k in sd if (m := re.match(r"input_hint_block\.(\d+)\.weight$", k)))
    return sd["input_hint_block.0.weight"].shape[1], tuple(sd[f"input_hint_block.{i}.weight"].shape[0]
                                                           for i in convs[:-1][::2])


def controlnet_config(sd: Mapping[str, torch.Tensor], heads: Mapping[str, int | None]) -> ControlNetConfig:
    """The config the shapes of an LDM-layout ControlNet state dict (prefix removed) describe.

    ``heads``: ``{"num_heads": n, "num_head_channels": None}`` or the other way round (shapes cannot say).
    """
    to_k = next((v for k, v in sd.items() if k.endswith("attn2.to_k.weight")), None)
    proj_in = next((v for k, v in sd.items() if k.endswith("proj_in.weight")), None)
    hint_channels, widths = hint_shape(sd)
    encoder = encoder_shape(sd)
    unet = UNetConfig(
        **encoder,
        out_channels=encoder["in_channels"],
        context_dim=to_k.shape[1] if to_k is not None else 768,
        use_linear_in_transformer=proj_in is not None and proj_in.ndim == 2,
        num_heads=heads.get("num_heads"),
        num_head_channels=heads.get("num_head_channels"),
    )
    union = sd["task_embedding"].shape[0] if "task_embedding" in sd else 0
    return ControlNetConfig(unet, hint_channels=hint_channels, hint_widths=widths, union_types=union)
