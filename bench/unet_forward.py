"""One UNet forward at a mid-size SD config: Hearth's UNet beside diffusers' UNet2DConditionModel, same weights.

Run: ``.venv/bin/python bench/unet_forward.py [--family sd1|sd2|sdxl] [--threads N] [--repeats N]``. Prints the
best and the median time of each (runs interleaved, after warm-up) and the ratio ours / diffusers of the best
times, which other processes on the machine disturb least; the target is <= 1.0. Needs the test dependencies
(diffusers); the key conversion is the parity tests' own.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sd"))

from hearth_sd.families import FAMILIES  # noqa: E402
from hearth_sd.sdxl_conditioning import sdxl_adm  # noqa: E402
from hearth_sd.unet import UNetModel  # noqa: E402
from ldm_to_diffusers import convert_unet  # noqa: E402


def mid_size_config(family: str):
    """The family's real UNet layout at reduced width: 128 base channels (vs 320), real heads, depths, mults."""
    full = FAMILIES[family].unet
    cfg = replace(full, model_channels=128)
    if cfg.num_head_channels:
        cfg = replace(cfg, num_head_channels=32)  # 64-wide heads need >= 64 channels at every level; keep 4+
    if family == "sdxl":
        cfg = replace(cfg, transformer_depth=(0, 2, 4), transformer_depth_middle=4)
    return cfg


def diffusers_unet(c):
    import diffusers

    kwargs = {}
    if c.adm_in_channels:
        kwargs = dict(
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=c.adm_in_channels,
        )
    return diffusers.UNet2DConditionModel(
        sample_size=64,
        in_channels=c.in_channels,
        out_channels=c.out_channels,
        down_block_types=tuple("CrossAttnDownBlock2D" if d else "DownBlock2D" for d in c.transformer_depth),
        up_block_types=tuple("CrossAttnUpBlock2D" if d else "UpBlock2D" for d in reversed(c.transformer_depth)),
        block_out_channels=tuple(c.model_channels * m for m in c.channel_mult),
        layers_per_block=c.num_res_blocks,
        transformer_layers_per_block=tuple(d or c.transformer_depth_middle for d in c.transformer_depth),
        cross_attention_dim=c.context_dim,
        attention_head_dim=tuple(c.heads_for(c.model_channels * m)[0] for m in c.channel_mult),
        use_linear_projection=c.use_linear_in_transformer,
        flip_sin_to_cos=True,
        freq_shift=0,
        **kwargs,
    ).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="sd1", choices=["sd1", "sd2", "sdxl"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=64, help="latent height and width (64 = a 512px image)")
    parser.add_argument("--batch", type=int, default=2, help="2 = one cond + one uncond, as CFG runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = mid_size_config(args.family)
    torch.manual_seed(0)
    ours = UNetModel(cfg).eval()
    ref = diffusers_unet(cfg)
    ref.load_state_dict(convert_unet(ours.state_dict(), cfg), strict=True)
    params = sum(p.numel() for p in ours.parameters())

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 4, args.size, args.size, generator=gen)
    t = torch.full((args.batch,), 500.0)
    context = torch.randn(args.batch, 77, cfg.context_dim, generator=gen)
    y, added = None, None
    if cfg.adm_in_channels:
        # The same size conditioning both ways: ours takes the ADM vector, diffusers builds it from time_ids.
        pooled = torch.randn(args.batch, cfg.adm_in_channels - 6 * 256, generator=gen)
        pixels = args.size * 8
        y = sdxl_adm(pooled, width=pixels, height=pixels)
        time_ids = torch.tensor([[pixels, pixels, 0, 0, pixels, pixels]] * args.batch, dtype=torch.float32)
        added = {"text_embeds": pooled, "time_ids": time_ids}

    runs = {
        "hearth": lambda: ours(x, t, context, y),
        "diffusers": lambda: ref(x, t, encoder_hidden_states=context, added_cond_kwargs=added).sample,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        diff = (runs["hearth"]() - runs["diffusers"]()).abs().max().item()
        for run in runs.values():  # warm-up: allocator, oneDNN primitive caches
            run()
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)

    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"UNet forward, {args.family} layout at 128 channels ({params / 1e6:.0f}M params), batch {args.batch}, "
        f"latent {args.size}x{args.size}, {args.threads} threads, {args.repeats} runs each"
    )
    for name in runs:
        print(f"  {name:<10} best {best[name] * 1000:9.1f} ms   median {median[name] * 1000:9.1f} ms")
    ratio = best["hearth"] / best["diffusers"]
    print(f"  ratio      {ratio:9.3f}  (best times; target <= 1.0; max abs difference {diff:.1e})")

if __name__ == "__main__":
    main()
