"""Training the miniature SD1.x UNet and CLIP text encoder together on the diffusion loss.

The objective is SD1's: eps prediction on the scaled-linear schedule (1000 steps, betas from 0.00085 to 0.012),
timesteps uniform, on latents already multiplied by 0.18215. Captions go through the real CLIP BPE tokenizer
(:mod:`hearth_sd.tokenizer`) and are laid out exactly as :class:`hearth_sd.text_encoding.CLIP` lays out a
prompt (start token, words, end token, padded with the end token to 77), so what the model learns at training is
what a ComfyUI workflow feeds it. A share of captions (``drop``) is replaced by the empty prompt, which is what
classifier-free guidance's negative side reads. An exponential moving average of the weights is what ships.

Two terms aim the small model at what guided sampling needs (see :func:`diffusion_loss`): Min-SNR weighting with a
floor, so the noisy timesteps that decide colour and shape come first without leaving the nearly clean ones
untrained, and an agreement term that asks the empty-prompt prediction to match the prompted one at low noise,
where the picture already shows what it is and guidance can only amplify the two predictions' errors.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch

from ..clip_text import CLIPTextEncoder, TextEncoderConfig
from ..families import SD1
from ..text_encoding import CLIP
from ..unet import UNetConfig, UNetModel

TEXT_CONFIG = TextEncoderConfig(width=32, layers=2, heads=4, intermediate=128, activation="quick_gelu")
# 64 channels at both levels (8x8 and 4x4 latents): width at full resolution is what the low-noise predictions
# need, and on 2 CPU threads a step costs about the same as 32 channels with (1, 2) (the calls are overhead-bound).
UNET_CONFIG = UNetConfig(model_channels=64, channel_mult=(1, 1), num_res_blocks=1, transformer_depth=(1, 1),
                         transformer_depth_middle=1, context_dim=TEXT_CONFIG.width, num_heads=4)
TIMESTEPS = 1000


def alphas_cumprod(beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = TIMESTEPS) -> torch.Tensor:
    """SD's scaled-linear schedule: betas linear in sqrt space, ``alpha_bar_t = prod(1 - beta)``."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


def token_ids(captions: Sequence[str], text: CLIPTextEncoder) -> torch.Tensor:
    """``[N, 77]`` ids of each caption, laid out by the same code that encodes prompts at run time."""
    clip = CLIP(SD1, {"l": text})
    return torch.tensor([clip.tokenize(c)["l"][0].tokens for c in captions])


def encode_text(text: CLIPTextEncoder, ids: torch.Tensor) -> torch.Tensor:
    """The cross-attention context SD1 reads: the final layer-normed hidden states, ``[N, 77, width]``."""
    return text(ids, layer=None, norm_hidden=True).hidden


class EMA:
    """An exponential moving average of a module's parameters (what the shipped file holds)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.module = copy.deepcopy(module).requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        # Warm up: early on the average follows the weights closely (they still move fast).
        d = min(self.decay, (1 + step) / (10 + step))
        for ema, p in zip(self.module.parameters(), module.parameters(), strict=True):
            ema.lerp_(p.detach(), 1.0 - d)


MIN_SNR_GAMMA = 5.0
LOW_NOISE_FLOOR = 0.25
# Timestep below which the empty-prompt prediction is asked to agree with the prompted one: sigma 2.7 on SD's schedule.
AGREE_BELOW = 650


def diffusion_loss(unet: UNetModel, context: torch.Tensor, latents: torch.Tensor, abar: torch.Tensor,
                   generator: torch.Generator, min_snr: float | None = MIN_SNR_GAMMA, floor: float = 0.0,
                   empty: torch.Tensor | None = None, agree_below: int = 0, agree_weight: float = 1.0
                   ) -> torch.Tensor:
    """Squared error of the eps prediction for ``latents`` (scaled) noised at random timesteps.

    With ``min_snr`` (Min-SNR-gamma weighting, Hang et al. 2023) each sample's error is weighted by
    ``min(SNR, gamma) / SNR``: the nearly clean timesteps, whose noise is hard to guess and says little about the
    picture, count less, so the small model spends its steps on the noisy ones where colour and shape are decided.
    ``None`` gives the plain mean squared error. ``floor`` bounds the weight from below: at SD's sigma 0.03 Min-SNR-5
    alone weighs an error 0.004, which leaves the last steps of a sampler to a barely trained model.

    With ``empty`` (the empty prompt's context, ``[1, 77, width]``) and ``agree_below``, each row whose timestep is
    below ``agree_below`` is also predicted under the empty prompt, in the same UNet call, and the squared
    difference of the two predictions is added (times ``agree_weight``, averaged over the batch). There the noisy
    latent already shows the picture, so a perfect model would predict the same noise under any prompt; what the
    two predictions disagree on is error, which classifier-free guidance multiplies by ``cfg - 1`` and a multistep
    sampler's extrapolation multiplies again. The gradient of that term reaches the empty-prompt prediction only:
    it learns to read from the picture what the prompt said, and the prompted prediction keeps its prompt. (Pulling
    both together also pulls the prompted one toward the colour the noisy latent happens to show, which is the
    colour a picture ends with when a sampler takes few steps at the noise levels where colour is decided.)
    """
    t = torch.randint(0, len(abar), (latents.shape[0],), generator=generator)
    noise = torch.randn(latents.shape, generator=generator)
    a = abar[t][:, None, None, None]
    noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
    low = t < agree_below if empty is not None else torch.zeros_like(t, dtype=torch.bool)
    n = int(low.sum())
    if n:  # one call: the batch, then its low-noise rows again under the empty prompt
        both = unet(torch.cat([noisy, noisy[low]]), torch.cat([t, t[low]]).float(),
                    torch.cat([context, empty.expand(n, -1, -1)]))
        pred, free = both[:len(t)], both[len(t):]
    else:
        pred = unet(noisy, t.float(), context)
    err = (pred - noise).pow(2).mean(dim=(1, 2, 3))
    if min_snr is None:
        loss = err.mean()
    else:
        snr = abar[t] / (1 - abar[t])
        loss = (err * (snr.clamp(max=min_snr) / snr).clamp(min=floor)).mean()
    if n:
        # Detached: only the empty prompt's prediction moves (see the docstring).
        loss = loss + agree_weight * (pred[low].detach() - free).pow(2).mean(dim=(1, 2, 3)).sum() / len(t)
    return loss


def train_diffusion(latents: torch.Tensor, captions: Sequence[str], steps: int, batch: int, lr: float,
                    generator: torch.Generator, drop: float = 0.15, floor: float = LOW_NOISE_FLOOR,
                    agree_below: int = AGREE_BELOW, agree_weight: float = 1.0, ema_decay: float = 0.998,
                    log: Callable[[str], None] = print, unet_config: UNetConfig = UNET_CONFIG,
                    text_config: TextEncoderConfig = TEXT_CONFIG) -> tuple[UNetModel, CLIPTextEncoder, list[float]]:
    """Train a UNet and text encoder on ``latents`` (already scaled by 0.18215) and their ``captions``.

    :return: the EMA UNet, the EMA text encoder and the loss curve (a running mean per logged step).
    """
    unet, text = UNetModel(unet_config), CLIPTextEncoder(text_config)
    ids = token_ids(captions, text)
    empty = token_ids([""], text)[0]
    params = [*unet.parameters(), *text.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.05)
    ema_unet, ema_text = EMA(unet, ema_decay), EMA(text, ema_decay)
    abar = alphas_cumprod()
    curve: list[float] = []
    running = None
    for step in range(steps):
        idx = torch.randint(0, len(latents), (batch,), generator=generator)
        batch_ids = ids[idx].clone()
        batch_ids[torch.rand(batch, generator=generator) < drop] = empty
        if agree_below:  # the empty prompt's context rides along, for the agreement term
            context = encode_text(text, torch.cat([batch_ids, empty[None]]))
            context, free = context[:-1], context[-1:]
        else:
            context, free = encode_text(text, batch_ids), None
        loss = diffusion_loss(unet, context, latents[idx], abar, generator, floor=floor, empty=free,
                              agree_below=agree_below, agree_weight=agree_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        ema_unet.update(unet, step)
        ema_text.update(text, step)
        running = float(loss.detach()) if running is None else 0.98 * running + 0.02 * float(loss.detach())
        if step % max(1, steps // 25) == 0 or step == steps - 1:
            curve.append(running)
            log(f"unet step {step + 1:5d}/{steps}  eps MSE {running:.4f}")
    return ema_unet.module.eval(), ema_text.module.eval(), curve
