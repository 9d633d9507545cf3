"""Training the miniature SD VAE: SD's KL autoencoder (downsampling by 8) fitted to the shapes images on the CPU.

The loss is L1 + L2 reconstruction plus a small KL term (the latents stay a Gaussian posterior the sampler can
start from). Most steps see 16x16 and 32x32 crops (the VAE is convolutional, so what it learns holds for any size;
a crop costs a fraction of a whole image) and the last steps whole 64x64 images. Afterwards :func:`normalize_latents` folds a per-channel
shift and scale into ``quant_conv`` / ``post_quant_conv`` so that raw latents times SD's 0.18215 have zero mean
and the spread :data:`LATENT_STD`. Decoding is unchanged by that fold.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..vae import AutoencoderKL, VAEConfig

# Four levels (8x). 64 wide, not 32: GroupNorm(32) on 32 channels is a per-channel instance norm, which on a flat
# shape over a flat background normalizes every channel to the same mask and so erases the colour (2 per group keeps it).
VAE_CONFIG = VAEConfig(ch=64, ch_mult=(1, 1, 1, 1), num_res_blocks=1, z_channels=4)
KL_WEIGHT = 1e-6
LATENT_SCALE = 0.18215  # SD1's; the model multiplies raw latents by it
# The spread of the scaled latents the UNet learns (SD1's own are near 1). Larger moves every feature of the picture
# to a higher noise level of SD's fixed schedule, so the sampler settles it sooner.
LATENT_STD = 2.0


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` to float ``[N, 3, H, W]`` in ``[-1, 1]`` (what the VAE encodes)."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _posterior(vae: AutoencoderKL, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    moments = vae.quant_conv(vae.encoder(x))
    mean, logvar = moments.chunk(2, dim=1)
    return mean, logvar.clamp(-30.0, 20.0)


def vae_loss(vae: AutoencoderKL, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(total loss, reconstruction L1) of a batch ``x`` in ``[-1, 1]``, decoding a sample of the posterior."""
    mean, logvar = _posterior(vae, x)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=generator)
    recon = vae.decoder(vae.post_quant_conv(z))
    l1 = (recon - x).abs().mean()
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=(1, 2, 3)).mean()
    return l1 + F.mse_loss(recon, x) + KL_WEIGHT * kl, l1


# (fraction of the steps, crop size, batch): every phase costs about the same per step (16*16*32 = 64*64*2
# pixels), and the small crops go first, where most of the learning happens cheaply.
PHASES = ((0.5, 16, 32), (0.45, 32, 8), (0.05, 64, 2))


def train_vae(pixels: torch.Tensor, steps: int, lr: float, generator: torch.Generator,
              log: Callable[[str], None] = print, config: VAEConfig = VAE_CONFIG) -> AutoencoderKL:
    """A VAE trained on ``pixels`` (``[N, 3, 64, 64]`` in ``[-1, 1]``) for ``steps`` optimizer steps.

    The steps go through :data:`PHASES`: random 16x16, then 32x32 crops (at multiples of 8 pixels, where the
    latent grid falls), then whole images.
    """
    vae = AutoencoderKL(config)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.05)
    bounds, total = [], 0.0
    for fraction, crop, batch in PHASES:
        total += fraction
        bounds.append((round(total * steps), crop, batch))
    n, size = pixels.shape[0], pixels.shape[-1]
    running = None
    for step in range(steps):
        crop, batch = next(((c, b) for end, c, b in bounds if step < end), bounds[-1][1:])
        crop = min(crop, size)
        x = pixels[torch.randint(0, n, (batch,), generator=generator)]
        if crop < size:
            oy, ox = (int(v) * 8 for v in torch.randint(0, (size - crop) // 8 + 1, (2,), generator=generator))
            x = x[:, :, oy:oy + crop, ox:ox + crop]
        loss, l1 = vae_loss(vae, x, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        running = float(l1.detach()) if running is None else 0.95 * running + 0.05 * float(l1.detach())
        if step % max(1, steps // 20) == 0 or step == steps - 1:
            log(f"vae  step {step + 1:5d}/{steps}  {crop}x{crop}  recon L1 {running:.4f}")
    return vae.eval()


@torch.no_grad()
def encode_means(vae: AutoencoderKL, pixels: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Raw latents (posterior means) of ``pixels``, ``[N, 4, H/8, W/8]``."""
    return torch.cat([_posterior(vae, pixels[i:i + batch])[0] for i in range(0, len(pixels), batch)])


@torch.no_grad()
def normalize_latents(vae: AutoencoderKL, latents: torch.Tensor, std: float = LATENT_STD) -> torch.Tensor:
    """Fold per-channel shift/scale into the VAE so ``latents`` (its raw means) become ``(z - m) * k`` with
    ``LATENT_SCALE * (z - m) * k`` of zero mean and standard deviation ``std``; returns the new raw latents."""
    m = latents.mean(dim=(0, 2, 3))
    k = std / (LATENT_SCALE * latents.std(dim=(0, 2, 3)))
    z = vae.quant_conv.out_channels // 2
    qc, pqc = vae.quant_conv, vae.post_quant_conv
    # quant_conv: mean rows -> (mean - m) * k; logvar rows gain 2 log k so the posterior's spread scales too.
    qc.weight[:z] *= k[:, None, None, None]
    qc.bias[:z] = (qc.bias[:z] - m) * k
    qc.bias[z:] += 2 * torch.log(k)
    # post_quant_conv sees z' = (z - m) * k: W z + b = (W / k) z' + (W m + b).
    pqc.bias += (pqc.weight[:, :, 0, 0] @ m)
    pqc.weight /= k[None, :, None, None]
    return (latents - m[None, :, None, None]) * k[None, :, None, None]


@torch.no_grad()
def background_distances(vae: AutoencoderKL, latents: torch.Tensor, colours: torch.Tensor,
                         background: tuple[int, int, int]) -> dict[int, float]:
    """Mean L2 distance, per colour label, of ``latents`` (scaled, ``[N, 4, h, w]``) from the plain background's.

    How far each colour stands out of the background in the space the diffusion model works in: at a given noise
    level a colour that sits close to the background is hidden longer, so the sampler settles it last and worst.
    ``colours`` holds each latent's colour label; the result maps each label present to its mean distance.
    """
    h, w = latents.shape[-2:]
    plain = torch.tensor(background, dtype=torch.uint8).expand(1, h * 8, w * 8, 3)
    base = encode_means(vae, to_pixels(plain)) * LATENT_SCALE
    dist = (latents - base).flatten(1).norm(dim=1)
    return {c: float(dist[colours == c].mean()) for c in sorted(set(colours.tolist()))}
