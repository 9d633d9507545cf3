"""Video benchmark: frames per second by stage for the tiny pipelines, and the Wan VAE's decode memory.

Parts:

* AnimateDiff and Wan 2.1 text-to-video, when ``bench/video_animatediff.py`` (``bench_animatediff``) and
  ``bench/video_wan.py`` (``bench_wan``) are present: each prints its own per-stage table.
* The Wan 2.1 VAE: encode and decode frames per second, and the decode's peak working memory, chunked (the causal
  cache, one latent frame at a time, as VAEDecode runs it) beside the whole-clip pass as the baseline, each next to
  the estimate the model manager is given (:func:`hearth_video.wan_vae.decode_memory_estimate`, plus the output).

Memory is measured in a fresh child process per case, so one case's allocations never hide another's. On CUDA it
is torch's peak allocated bytes above what was allocated before the decode; on the CPU it is the peak resident set
(VmHWM, reset through ``/proc/self/clear_refs`` right before the decode) minus the resident set at that moment,
with glibc's mmap threshold pinned so that large tensors go back to the system when freed. The decoded frames
(``[F, H, W, 3]`` float32) count in both figures; they are also shown alone.

Run: .venv/bin/python bench/video.py [--frames 33] [--size 128] [--base-dim 8]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "plugins" / "video"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

MB = 2**20


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _make_vae(base_dim: int, device: str) -> Any:
    import torch
    from hearth_video.wan_vae import WanVAEConfig, WanVAEModel
    from hearth_video.wan_vae_value import WanVAE

    from hearth.core.models import PatchedModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = WanVAEModel(WanVAEConfig(base_dim=base_dim)).eval()
    return WanVAE(model, PatchedModel(model, name=f"wan-vae-{base_dim}", load_device=device))


def child(mode: str, frames: int, size: int, base_dim: int, device: str, threads: int) -> dict[str, Any]:
    """One measured case in this (fresh) process: ``decode-chunked``, ``decode-whole`` or ``encode``."""
    import torch

    torch.set_num_threads(threads)
    vae = _make_vae(base_dim, device)
    t = (frames - 1) // 4 + 1
    f = vae.downscale_ratio
    latent = torch.randn(1, 16, t, size // f, size // f, generator=torch.Generator().manual_seed(1))
    pixels = torch.rand(frames, size, size, 3, generator=torch.Generator().manual_seed(2))
    model = vae.model

    def run() -> Any:
        if mode == "decode-chunked":
            return vae.decode(latent)
        if mode == "decode-whole":
            vae._load(0)
            with torch.no_grad():
                return vae._frames(model.decode(latent.to(device), chunked=False))
        return vae.encode(pixels)

    # Warm up on a small clip: kernels chosen, weights on the device, allocator pools made.
    small = latent[:, :, :2, :2, :2]
    vae.decode(small)
    vae.encode(pixels[:5, :16, :16])
    gc.collect()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _status_kb("VmRSS") * 1024
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    start, cpu_start = time.perf_counter(), time.process_time()
    out = run()
    if cuda:
        torch.cuda.synchronize()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = (torch.cuda.max_memory_allocated() if cuda else _status_kb("VmHWM") * 1024) - base
    output_bytes = out.numel() * out.element_size()
    if mode.startswith("decode"):
        estimate = vae.decode_memory_required(latent.shape, chunked=mode == "decode-chunked") + output_bytes
    else:
        from hearth_video.wan_vae import encode_memory_estimate

        estimate = encode_memory_estimate(frames, size, size, vae.config) + output_bytes
    return {"seconds": seconds, "cpu": cpu, "frames": frames, "peak": peak, "output": output_bytes, "estimate": estimate}


def measure(mode: str, args: argparse.Namespace, frames: int | None = None) -> dict[str, Any]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0",
               OMP_NUM_THREADS=str(args.threads))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--frames", str(frames or args.frames),
               "--size", str(args.size), "--base-dim", str(args.base_dim), "--device", args.device,
               "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench child {mode} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_wan_vae(args: argparse.Namespace) -> None:
    print(f"Wan 2.1 VAE, base_dim {args.base_dim} (random weights), {args.frames} frames of {args.size}x{args.size}, "
          f"{args.device}, {args.threads} thread(s); each case in a fresh process")
    print(f"{'case':<26}{'frames/s':>10}{'CPU s':>8}{'peak MB':>10}{'estimate MB':>13}{'est/peak':>10}{'output MB':>11}")
    rows = {}
    longer = 2 * args.frames - 1
    for mode, label, frames in (("encode", "encode (chunks of 1, 4)", None),
                                ("decode-whole", "decode, whole clip (base)", None),
                                ("decode-chunked", "decode, chunked", None),
                                ("decode-chunked", f"decode, chunked, {longer} fr", longer)):
        row = rows[mode if frames is None else "longer"] = measure(mode, args, frames)
        estimate = row["estimate"]
        print(f"{label:<26}{row['frames'] / row['seconds']:>10.1f}{row['cpu']:>8.2f}{row['peak'] / MB:>10.1f}"
              + f"{estimate / MB:>13.1f}{estimate / max(row['peak'], 1):>10.2f}{row['output'] / MB:>11.1f}")
    whole, chunked, more = rows["decode-whole"], rows["decode-chunked"], rows["longer"]
    working = chunked["peak"] - chunked["output"]
    print(f"chunked decode: {whole['peak'] / max(chunked['peak'], 1):.1f}x less peak memory than the whole clip, "
          f"{working / MB:.1f} MB beyond its output, using {chunked['cpu'] / max(whole['cpu'], 1e-9):.2f}x the whole "
          f"clip's CPU time")
    print(f"chunked decode, twice the frames: {(more['peak'] - more['output']) / MB:.1f} MB beyond the output "
          f"(was {working / MB:.1f}): bounded by the chunk, not the clip")


def other_parts() -> list[tuple[str, Any]]:
    """The other video benches' entry points, for those whose files exist."""
    found = []
    for file, name in (("video_animatediff.py", "bench_animatediff"), ("video_wan.py", "bench_wan")):
        path = Path(__file__).resolve().parent / file
        if not path.is_file():
            print(f"({file} is not here: no {name} figures)")
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.append((name, getattr(module, name)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=33, help="video frames (1 + 4k); default 33")
    parser.add_argument("--size", type=int, default=128, help="frame width and height in pixels; default 128")
    parser.add_argument("--base-dim", type=int, default=8, help="VAE base channels: 8 tiny, 96 the real VAE")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per case (default 1: steadier figures on a shared machine)")
    parser.add_argument("--vae-only", action="store_true", help="skip the AnimateDiff and Wan pipeline benches")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.child:
        print(json.dumps(child(args.child, args.frames, args.size, args.base_dim, args.device, args.threads)))
        return
    if (args.frames - 1) % 4 or args.size % 8:
        raise SystemExit("--frames must be 1 + 4k and --size a multiple of 8 (the VAE's grid)")
    if not args.vae_only:
        for name, run in other_parts():
            print(f"== {name}")
            run()
            print()
    print("== Wan VAE")
    bench_wan_vae(args)


if __name__ == "__main__":
    main()
