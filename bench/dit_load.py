"""Load a full-size-shaped Flux.1 (scaled fp8) and Z-Image Turbo (bf16) file through the model manager, beside a
raw safetensors read of the same file: load time and peak RSS.

The bench writes each file with the published key names and shapes and random weights (streamed tensor by tensor
from a pool of random values: never the whole file in memory), then loads it in fresh subprocesses so that peak
RSS (``ru_maxrss``) is that one load's:

* ``safetensors``: ``safetensors.torch.load_file`` (every tensor read into memory);
* ``hearth``: the family's loader (``UNETLoader``'s), then the model made ready for a 1024x1024 latent batch by the
  process's model manager with a CPU budget below the weights (``--budget``, default half of them), so the load is
  partial and the rest is streamed per forward, as on a GPU too small for the model.

Both then read one byte of every page of every weight, as a forward would. Targets (issue 20): load <= 1.2x the raw
read; peak RSS above the interpreter's baseline <= 1.1x the weight bytes. Full size: Flux.1 dev in scaled fp8 is
~12 GB and Z-Image Turbo in bf16 ~12 GB: check ``free -g`` first; ``--depth-scale 0.25`` keeps every width and a
quarter of the blocks.

    .venv/bin/python bench/dit_load.py [--family flux|zimage|both] [--dir DIR] [--repeat 1] [--depth-scale 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SAFETENSORS = {"float8_e4m3fn": "F8_E4M3", "bfloat16": "BF16", "float32": "F32"}
POOL = 1 << 26  # random values written in turn into every tensor: 64 Mi of each dtype


def flux_layout(depth_scale: float, config=None) -> dict[str, tuple[tuple[int, ...], str]]:
    """ComfyUI's scaled-fp8 Flux.1 dev: block matrices float8 with a float32 ``scale_weight``, the rest bf16
    (``config``: another shape than the published one, for tests)."""
    import torch
    from hearth_dit.flux_model import FluxTransformer, full_size_config

    cfg = config or full_size_config("dev")
    cfg = replace(cfg, depth=max(1, round(cfg.depth * depth_scale)),
                  depth_single_blocks=max(1, round(cfg.depth_single_blocks * depth_scale)))
    with torch.device("meta"):
        state = FluxTransformer(cfg).state_dict()
    layout: dict[str, tuple[tuple[int, ...], str]] = {"scaled_fp8": ((0,), "F8_E4M3")}
    for key, tensor in state.items():
        if key.startswith(("double_blocks.", "single_blocks.")) and key.endswith(".weight") and tensor.ndim == 2:
            layout[key] = (tuple(tensor.shape), "F8_E4M3")
            layout[key[: -len("weight")] + "scale_weight"] = ((), "F32")
        else:
            layout[key] = (tuple(tensor.shape), "BF16")
    return layout


def zimage_layout(depth_scale: float, config=None) -> dict[str, tuple[tuple[int, ...], str]]:
    """Z-Image Turbo's published bf16 file (ComfyUI's z_image_turbo_bf16 key names)."""
    import torch
    from hearth_dit.zimage_model import ZImageModel, full_size_config

    cfg = config or full_size_config()
    cfg = replace(cfg, n_layers=max(1, round(cfg.n_layers * depth_scale)))
    with torch.device("meta"):
        state = ZImageModel(cfg).state_dict()
    return {key: (tuple(t.shape), "BF16") for key, t in state.items()}


def write_file(path: Path, layout: dict[str, tuple[tuple[int, ...], str]], seed: int = 0,
               metadata: dict[str, str] | None = None) -> int:
    """Stream random weights into a safetensors file; returns the bytes of tensor data. ``metadata``: what a
    non-published shape's loader needs beside the keys (the tiny configs' RoPE split)."""
    import torch

    from hearth.core.models.loading import ITEMSIZE

    header, offset = {}, 0
    for key, (shape, dtype) in layout.items():
        size = ITEMSIZE[dtype] * math.prod(shape)
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt", "hearth.bench": "full-size-shaped random weights", **(metadata or {})}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(POOL, generator=gen)
    pools = {"BF16": (values * 0.02).to(torch.bfloat16).view(torch.uint8).numpy().tobytes(),
             "F8_E4M3": (values * 0.5).clamp(-448, 448).to(torch.float8_e4m3fn).view(torch.uint8).numpy().tobytes(),
             "F32": (values.abs() * 0.01 + 1e-3).numpy().tobytes()}
    position = dict.fromkeys(pools, 0)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for shape, dtype in layout.values():
            need, pool = ITEMSIZE[dtype] * math.prod(shape), pools[dtype]
            while need:
                start = position[dtype] % len(pool)
                chunk = min(need, len(pool) - start)
                f.write(memoryview(pool)[start:start + chunk])
                position[dtype] += chunk
                need -= chunk
    return offset


# -- one load, in its own process ---------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _touch(tensors) -> int:
    """Read one byte of every page of every tensor: lazily mapped weights become resident, as in a forward."""
    import torch

    total = 0
    for tensor in tensors:
        if tensor.numel():
            total += int(tensor.detach().reshape(-1).view(torch.uint8)[::4096].sum())
    return total


def worker(mode: str, family: str, path: str, budget: int) -> dict:
    import resource

    import torch

    torch.set_num_threads(1)
    partial = None
    if mode == "safetensors":
        from safetensors.torch import load_file

        before = _rss_bytes()
        start = time.perf_counter()
        state = load_file(path)
        _touch(state.values())
        weights = sum(t.numel() * t.element_size() for t in state.values())
    else:
        from hearth.core.models import ModelManager
        from hearth.core.runtime import Runtime

        if family == "flux":
            from hearth_dit.flux_loaders import load_diffusion_model
        else:
            from hearth_dit.zimage_loaders import load_diffusion_model
        manager = ModelManager("cpu", budgets={"cpu": budget})
        runtime = Runtime.build(models_dir=Path(path).parent, environ={}, manager=manager)
        runtime.plugins  # noqa: B018 -- loaded before the clock starts: a server has them loaded already
        before = _rss_bytes()
        start = time.perf_counter()
        with runtime.activate():
            model = load_diffusion_model(path, device="cpu")
            shape = (1, 16, 128, 128)  # a 1024x1024 image
            if budget <= 0:  # half the weights beside the working memory: a partial load
                working = manager.memory_estimate(model.patcher, shape, model.compute_dtype())
                budget = model.patcher.nbytes // 2 + working
            manager.set_budget("cpu", budget)
            model.prepare(shape)
            tensors = list(model.module.state_dict().values())
            _touch(tensors)
            weights = sum(t.numel() * t.element_size() for t in tensors)
            record = next(iter(manager.loaded_models("cpu")), None)
            partial = None if record is None else record.as_dict()
    end = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": mode, "seconds": end - start, "rss_before": before, "peak_rss": peak, "weights": weights,
            "placement": partial, "budget": budget}


def run_worker(mode: str, family: str, path: Path, budget: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", mode, family, str(path), str(budget)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"{mode} load of {path.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_family(family: str, folder: Path, args) -> None:
    layout = (flux_layout if family == "flux" else zimage_layout)(args.depth_scale)
    path = folder / f"{family}-full-shaped.safetensors"
    start = time.perf_counter()
    weight_bytes = write_file(path, layout)
    print(f"{family}: wrote {path.name}: {weight_bytes / 1e9:.2f} GB, {len(layout)} tensors, depth x{args.depth_scale}"
          f" ({time.perf_counter() - start:.0f} s)", flush=True)
    budget = int(args.budget * 1e9)  # 0: the worker picks half the weights plus the working memory
    try:
        runs: dict[str, list[dict]] = {"safetensors": [], "hearth": []}
        for _ in range(args.repeat):
            for mode in runs:  # interleaved: drift on the machine hits both alike
                runs[mode].append(run_worker(mode, family, path, budget))
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
    report(family, runs, weight_bytes, budget)


def report(family: str, runs: dict[str, list[dict]], weight_bytes: int, budget: int) -> None:
    best = {mode: min(runs[mode], key=lambda r: r["seconds"]) for mode in runs}
    base = best["safetensors"]["seconds"]
    budget = best["hearth"].get("budget") or budget
    print(f"  {family}: {weight_bytes / 1e9:.2f} GB of weights; manager budget {budget / 1e9:.2f} GB (CPU); "
          f"best of {len(runs['hearth'])}")
    print(f"  {'loader':<12} {'seconds':>8} {'x raw':>6} {'peak RSS GB':>12} {'above baseline GB':>18} {'x weights':>10}")
    for mode, r in best.items():
        above = r["peak_rss"] - r["rss_before"]
        print(f"  {mode:<12} {r['seconds']:>8.2f} {r['seconds'] / base:>6.2f} {r['peak_rss'] / 1e9:>12.2f} "
              f"{above / 1e9:>18.2f} {above / weight_bytes:>10.2f}")
    placement = best["hearth"].get("placement")
    if placement:
        print(f"  hearth placement: {placement}")
    print("  targets: hearth load <= 1.2x safetensors; peak RSS above baseline <= 1.1x weights", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="both", choices=["flux", "zimage", "both"])
    parser.add_argument("--dir", help="folder for the generated files (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per loader; the best is shown")
    parser.add_argument("--depth-scale", type=float, default=1.0, help="fraction of the blocks (widths stay full)")
    parser.add_argument("--budget", type=float, default=0.0, help="the manager's CPU budget in GB (default: half "
                                                                    "the weights plus the working memory of a "
                                                                    "1024px forward, forcing a partial load)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--worker", nargs=4, metavar=("MODE", "FAMILY", "PATH", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        mode, family, path, budget = args.worker
        print(json.dumps(worker(mode, family, path, int(budget))))
        return
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="hearth-dit-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for family in (["flux", "zimage"] if args.family == "both" else [args.family]):
            bench_family(family, folder, args)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
