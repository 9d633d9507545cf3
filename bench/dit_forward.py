"""One transformer step of Flux.1 and of Z-Image at a mid-size config: Hearth's beside diffusers', same weights.

Run: ``.venv/bin/python bench/dit_forward.py [--family flux|zimage|both] [--threads N] [--repeats N] [--size N]``.
Each family keeps its real layout (Flux: double then single stream blocks, 128-wide heads, T5 width 4096 and
CLIP-L width 768 in; Z-Image: noise and caption refiners then the joint layers, 128-wide heads, Qwen3 width 2560
in) at a reduced width and depth that fits a shared 2-core machine (:func:`mid_size`). Runs are interleaved after a
warm-up; it prints the best and median time of each and the ratio ours / diffusers of the best times (which other
processes disturb least); the target is <= 1.0. Hearth runs twice: with its default CPU attention (bit-identical to
ComfyUI's) and with ``HEARTH_CPU_ATTENTION=sdpa`` (torch's fused kernel, which diffusers calls). Needs diffusers (a
test dependency).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch


def _randomize(module: torch.nn.Module, seed: int) -> None:
    """Random weights, norms around 1: a fair workload (zero-initialised gates would skip nothing, but be safe)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if "norm" in name and name.endswith(("weight", "scale")):
                param.copy_(1 + 0.05 * torch.randn(param.shape, generator=generator))
            else:
                param.copy_(0.02 * torch.randn(param.shape, generator=generator))


def flux_pair(hidden: int, depth: int, single: int, size: int, text: int, batch: int):
    """Hearth's FluxTransformer and diffusers' FluxTransformer2DModel with the same weights, and their calls."""
    import diffusers
    from hearth_dit.flux_convert import to_diffusers
    from hearth_dit.flux_model import FluxTransformer, full_size_config

    cfg = replace(full_size_config("dev"), hidden_size=hidden, num_heads=hidden // 128, depth=depth,
                  depth_single_blocks=single)
    ours = FluxTransformer(cfg).eval()
    _randomize(ours, 0)
    ref = diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=cfg.in_channels * 4, num_layers=cfg.depth, num_single_layers=cfg.depth_single_blocks,
        attention_head_dim=cfg.head_dim, num_attention_heads=cfg.num_heads, joint_attention_dim=cfg.context_in_dim,
        pooled_projection_dim=cfg.vec_in_dim, guidance_embeds=True, axes_dims_rope=cfg.axes_dim).eval()
    ref.load_state_dict(to_diffusers(ours.state_dict(), cfg.hidden_size), strict=True)

    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 16, size, size, generator=g)
    t, guidance = torch.full((batch,), 0.7), torch.full((batch,), 3.5)
    context = torch.randn(batch, text, cfg.context_in_dim, generator=g)
    pooled = torch.randn(batch, cfg.vec_in_dim, generator=g)
    h = w = size // 2
    ids = torch.zeros(h, w, 3)
    ids[..., 1], ids[..., 2] = torch.arange(h)[:, None], torch.arange(w)[None, :]

    def theirs() -> torch.Tensor:
        # diffusers' pipeline packs 2x2 patches outside the model: part of its step, timed with it.
        packed = x.view(batch, 16, h, 2, w, 2).permute(0, 2, 4, 1, 3, 5).reshape(batch, h * w, 64)
        out = ref(hidden_states=packed, encoder_hidden_states=context, pooled_projections=pooled, timestep=t,
                  img_ids=ids.reshape(-1, 3), txt_ids=torch.zeros(text, 3), guidance=guidance, return_dict=False)[0]
        return out.reshape(batch, h, w, 16, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(batch, 16, size, size)

    label = f"Flux.1 dev layout at hidden {hidden} ({depth} double + {single} single blocks)"
    return label, ours, lambda: ours(x, t, context, pooled, guidance), theirs


def zimage_pair(dim: int, layers: int, size: int, text: int, batch: int):
    """Hearth's ZImageModel and diffusers' ZImageTransformer2DModel with the same weights, and their calls."""
    import diffusers
    from diffusers.loaders.single_file_utils import convert_z_image_transformer_checkpoint_to_diffusers
    from hearth_dit.zimage_model import ZImageModel, full_size_config

    cfg = replace(full_size_config(), dim=dim, n_heads=dim // 128, n_kv_heads=dim // 128, n_layers=layers,
                  ffn_dim=int(dim / 3 * 8))
    ours = ZImageModel(cfg).eval()
    _randomize(ours, 0)
    ref = diffusers.ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=cfg.dim, n_layers=cfg.n_layers,
        n_refiner_layers=cfg.n_refiner_layers, n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads,
        cap_feat_dim=cfg.cap_feat_dim, axes_dims=list(cfg.axes_dims), axes_lens=[1536, 512, 512]).eval()
    state = {k: v.clone() for k, v in ours.state_dict().items()}
    ref.load_state_dict(convert_z_image_transformer_checkpoint_to_diffusers(state), strict=True)

    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 16, size, size, generator=g)
    t = torch.full((batch,), 0.3)
    cap = torch.randn(batch, text, cfg.cap_feat_dim, generator=g)

    def theirs() -> torch.Tensor:
        return torch.stack(ref(list(x.unsqueeze(2)), t, list(cap), return_dict=False)[0]).squeeze(2)

    label = f"Z-Image Turbo layout at dim {dim} ({cfg.n_refiner_layers}+{cfg.n_refiner_layers} refiners, {layers} layers)"
    return label, ours, lambda: ours(x, t, cap), theirs


def _with_sdpa(run: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """``run`` with the core's CPU attention set to torch's fused kernel (what diffusers calls), not the
    ComfyUI-identical one Hearth uses on a CPU by default (``HEARTH_CPU_ATTENTION``, read per call)."""
    def wrapped() -> torch.Tensor:
        before = os.environ.get("HEARTH_CPU_ATTENTION")
        os.environ["HEARTH_CPU_ATTENTION"] = "sdpa"
        try:
            return run()
        finally:
            if before is None:
                os.environ.pop("HEARTH_CPU_ATTENTION", None)
            else:
                os.environ["HEARTH_CPU_ATTENTION"] = before

    return wrapped


def measure(label: str, ours: torch.nn.Module, runs: dict[str, Callable[[], torch.Tensor]], args
            ) -> dict[str, float]:
    """Print and return the best times, their ratio and the largest difference of the two outputs."""
    params = sum(p.numel() for p in ours.parameters())
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        diff = (runs["hearth"]() - runs["diffusers"]()).abs().max().item()
        for run in runs.values():  # warm-up: allocator, oneDNN primitive caches
            run()
        for _ in range(args.repeats):
            for name, run in runs.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                run()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    # CPU seconds of the process: less moved than wall time by other jobs taking the cores (a busy machine).
    cpu_best = {name: min(t) for name, t in cpu.items()}
    print(f"{label}: {params / 1e6:.0f}M params, batch {args.batch}, latent {args.size}x{args.size}, "
          f"{args.text} text tokens, float32, {args.threads} threads, {args.repeats} runs each")
    for name in runs:
        print(f"  {name:<10} best {best[name] * 1000:9.1f} ms   median {median[name] * 1000:9.1f} ms   "
              f"best CPU {cpu_best[name] * 1000:9.1f} ms")
    ratio = best["hearth"] / best["diffusers"]
    cpu_ratio = cpu_best["hearth"] / cpu_best["diffusers"]
    print(f"  ratio      {ratio:9.3f}  (best times; target <= 1.0; CPU-time ratio {cpu_ratio:.3f}; max abs "
          f"difference {diff:.1e})")
    found = {"hearth": best["hearth"], "diffusers": best["diffusers"], "ratio": ratio, "cpu_ratio": cpu_ratio,
             "max_abs_difference": diff}
    if "hearth-sdpa" in runs:
        found["ratio_sdpa"] = best["hearth-sdpa"] / best["diffusers"]
        print(f"  ratio sdpa {found['ratio_sdpa']:9.3f}  (HEARTH_CPU_ATTENTION=sdpa: the same attention kernel as "
              f"diffusers)")
    return found


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="both", choices=["flux", "zimage", "both"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=32, help="latent height and width (32 = a 256px image)")
    parser.add_argument("--text", type=int, default=128, help="text tokens (T5 for Flux, Qwen3 for Z-Image)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--width", type=int, default=768, help="hidden width (a multiple of 128; full: 3072 / 3840)")
    parser.add_argument("--depth", type=int, default=4, help="Flux double blocks (x2 single) / Z-Image layers")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    if args.family in ("flux", "both"):
        label, ours, mine, theirs = flux_pair(args.width, args.depth, 2 * args.depth, args.size, args.text,
                                              args.batch)
        results["flux"] = measure(label, ours, {"hearth": mine, "hearth-sdpa": _with_sdpa(mine), "diffusers": theirs},
                                  args)
        del ours, mine, theirs
    if args.family in ("zimage", "both"):
        label, ours, mine, theirs = zimage_pair(args.width, args.depth, args.size, args.text, args.batch)
        results["zimage"] = measure(label, ours, {"hearth": mine, "hearth-sdpa": _with_sdpa(mine),
                                                  "diffusers": theirs}, args)
    return results


if __name__ == "__main__":
    main()
