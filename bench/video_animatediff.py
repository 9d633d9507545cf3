"""AnimateDiff on tiny models: frames per second by stage (text encode, sampling, decode), beside the image model.

Models: the tiny SD1 checkpoint and the tiny v2 motion module (``comfy models make-tiny sd1`` / ``animatediff``),
written to a temporary folder. Stages, each timed on its own after one warm-up:

* text encode: the positive and negative prompts through CLIP (the same with or without motion);
* sampling: KSampler (euler, CFG) on a clip of ``--frames`` latents, with the image UNet alone (the baseline:
  every frame sampled on its own, no motion module), with the motion module over the whole clip, and with the
  motion module in context windows (``--window`` frames, ``--overlap`` shared; uniform schedule, pyramid
  blending); then a clip ``--long`` frames long in the same windows;
* decode: VAEDecode of the clip.

Frames per second is the clip's frames over the stage's seconds. The tiny UNet's ops are small, so the figures
say what the motion modules and windows add relative to the baseline, not what a real model runs at. On a CPU
shared with other work, pass ``--threads 1``: threads fighting over busy cores slow tiny ops tenfold.

Run: .venv/bin/python bench/video_animatediff.py [--frames 16] [--long 48] [--size 64] [--steps 4] [--threads N]
(bench/video.py runs it too, with the defaults).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "plugins" / "video"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

DEFAULTS = {"frames": 16, "long": 48, "size": 64, "steps": 4, "window": 8, "overlap": 2, "repeat": 2,
            "threads": 0}


def _best(run: Callable[[], Any], repeat: int) -> float:
    run()  # warm-up: weights resident, kernels chosen
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_animatediff(**options: Any) -> list[dict[str, Any]]:
    """Measure and print the table; returns its rows (stage, frames, seconds, frames_per_second, vs_baseline)."""
    import torch
    from hearth_samplers.sampling import common_ksampler
    from hearth_sd.loaders import checkpoint
    from hearth_sd.tiny import make_tiny_checkpoint
    from hearth_video.animatediff_context import ContextOptions
    from hearth_video.animatediff_nodes import load_motion_model_file
    from hearth_video.animatediff_sampling import AnimateDiffModel
    from hearth_video.animatediff_tiny import write_tiny_motion_model

    o = {**DEFAULTS, **options}
    if o["threads"]:
        torch.set_num_threads(o["threads"])
    folder = Path(tempfile.mkdtemp(prefix="bench-animatediff-"))
    sd, clip, vae = checkpoint(make_tiny_checkpoint("sd1", folder / "tiny-sd1.safetensors"))
    motion = load_motion_model_file(write_tiny_motion_model(folder / "tiny-animatediff-sd1.safetensors"))
    animated = AnimateDiffModel(sd.clone(), motion)
    windowed = AnimateDiffModel(sd.clone(), motion, context=ContextOptions(o["window"], o["overlap"]))

    def encode() -> tuple[list, list]:
        positive = clip.encode("a red fox running through the snow")
        negative = clip.encode("blurry, watermark")
        return [[positive[0], {"pooled_output": positive[1]}]], [[negative[0], {"pooled_output": negative[1]}]]

    positive, negative = encode()
    latent_size = o["size"] // 8

    def sample(model: Any, frames: int) -> Callable[[], Any]:
        latent = {"samples": torch.zeros(frames, 4, latent_size, latent_size)}
        return lambda: common_ksampler(model, 42, o["steps"], 7.0, "euler", "normal", positive, negative, latent)

    clip_latent = sample(sd, o["frames"])()["samples"]
    rows: list[dict[str, Any]] = []

    def row(stage: str, frames: int, seconds: float, baseline: float | None = None) -> None:
        rows.append({"stage": stage, "frames": frames, "seconds": seconds, "frames_per_second": frames / seconds,
                     "vs_baseline": None if baseline is None else seconds / baseline})

    repeat = o["repeat"]
    row("text encode (2 prompts)", o["frames"], _best(encode, repeat))
    base = _best(sample(sd, o["frames"]), repeat)
    row("sampling, image UNet (baseline)", o["frames"], base)
    row("sampling, motion module", o["frames"], _best(sample(animated, o["frames"]), repeat), base)
    row(f"sampling, windows of {o['window']}", o["frames"], _best(sample(windowed, o["frames"]), repeat), base)
    long_base = _best(sample(sd, o["long"]), repeat)
    row(f"sampling {o['long']}, image UNet (baseline)", o["long"], long_base)
    row(f"sampling {o['long']}, windows of {o['window']}", o["long"], _best(sample(windowed, o["long"]), repeat),
        long_base)
    row("decode", o["frames"], _best(lambda: vae.decode(clip_latent), repeat))

    print(f"AnimateDiff (tiny SD1 + tiny v2 motion module), {o['size']}x{o['size']} px, {o['steps']} euler steps, "
          f"CFG 7, windows {o['window']}/{o['overlap']} uniform pyramid; torch threads {torch.get_num_threads()}, "
          f"{sd.patcher.load_device}")
    print(f"{'stage':<36}{'frames':>7}{'seconds':>10}{'frames/s':>10}{'vs baseline':>13}")
    for r in rows:
        ratio = "" if r["vs_baseline"] is None else f"{r['vs_baseline']:.2f}x"
        print(f"{r['stage']:<36}{r['frames']:>7}{r['seconds']:>10.3f}{r['frames_per_second']:>10.1f}{ratio:>13}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("frames", "long", "size", "steps", "window", "overlap", "repeat"):
        parser.add_argument(f"--{name}", type=int, default=DEFAULTS[name])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    bench_animatediff(**vars(args))


if __name__ == "__main__":
    main()
