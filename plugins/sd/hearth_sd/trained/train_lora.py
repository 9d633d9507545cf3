"""Training a kohya-format LoRA on the miniature UNet: the "outlined" style (hollow shapes, same captions).

Every ``nn.Linear`` inside the UNet's transformer blocks (self- and cross-attention projections, the feed-forward
layers) gets a rank-``r`` adapter ``W x + (alpha / r) * up(down(x))``; the base model and text encoder stay frozen
and only the adapters learn, on the same diffusion loss as the base model. The file uses kohya's names:
``lora_unet_`` + the module's path in the checkpoint's own (LDM) layout with dots as underscores, e.g.
``lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha``,
which is what LoraLoader reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..unet import UNetModel
from .train_diffusion import EMA, alphas_cumprod, diffusion_loss, encode_text, token_ids


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update (``up`` starts at zero: no change at step 0)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, generator: torch.Generator):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank
        self.alpha = alpha
        self.down = nn.Parameter(torch.randn(rank, base.in_features, generator=generator) / base.in_features ** 0.5)
        self.up = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * (x @ self.down.t() @ self.up.t())


def _targets(unet: nn.Module) -> list[str]:
    return [name for name, m in unet.named_modules() if isinstance(m, nn.Linear) and ".transformer_blocks." in name]


def _swap(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def kohya_state_dict(adapters: dict[str, LoRALinear]) -> dict[str, torch.Tensor]:
    """The adapters as a kohya LoRA file's tensors (fp16 weights, fp32 alphas)."""
    out: dict[str, torch.Tensor] = {}
    for name, a in adapters.items():
        key = "lora_unet_" + name.replace(".", "_")
        out[f"{key}.lora_down.weight"] = a.down.detach().to(torch.float16).contiguous()
        out[f"{key}.lora_up.weight"] = a.up.detach().to(torch.float16).contiguous()
        out[f"{key}.alpha"] = torch.tensor(float(a.alpha))
    return out


def train_lora(unet: UNetModel, text: nn.Module, latents: torch.Tensor, captions: Sequence[str], steps: int,
               batch: int, lr: float, generator: torch.Generator, rank: int = 4, alpha: float = 4.0,
               drop: float = 0.15, log: Callable[[str], None] = print) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Train adapters on a copy-free view of ``unet`` (its modules are restored afterwards).

    :return: the kohya tensors (of the EMA adapters) and the loss curve.
    """
    unet.requires_grad_(False)
    text.requires_grad_(False)
    adapters = {name: LoRALinear(unet.get_submodule(name), rank, alpha, generator) for name in _targets(unet)}
    for name, a in adapters.items():
        _swap(unet, name, a)
    try:
        holder = nn.ModuleDict({n.replace(".", "_"): a for n, a in adapters.items()})
        params = [p for a in adapters.values() for p in (a.down, a.up)]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        ema = EMA(holder, 0.99)
        with torch.no_grad():
            ids = token_ids(captions, text)
            empty = token_ids([""], text)[0]
        abar = alphas_cumprod()
        curve: list[float] = []
        running = None
        for step in range(steps):
            idx = torch.randint(0, len(latents), (batch,), generator=generator)
            batch_ids = ids[idx].clone()
            batch_ids[torch.rand(batch, generator=generator) < drop] = empty
            with torch.no_grad():
                context = encode_text(text, batch_ids)
            loss = diffusion_loss(unet, context, latents[idx], abar, generator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema.update(holder, step)
            running = float(loss.detach()) if running is None else 0.95 * running + 0.05 * float(loss.detach())
            if step % max(1, steps // 10) == 0 or step == steps - 1:
                curve.append(running)
                log(f"lora step {step + 1:5d}/{steps}  eps MSE {running:.4f}")
        averaged = {n: ema.module[n.replace(".", "_")] for n in adapters}
        return kohya_state_dict(averaged), curve
    finally:
        for name, a in adapters.items():
            _swap(unet, name, a.base)
