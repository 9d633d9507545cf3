"""Benchmark: three models through the model manager with a budget that fits two, beside simpler policies.

The workload is a typical graph's: a large model used at every step (a UNet) and two others used in turns (two
text encoders, a VAE), so a budget of two models forces one eviction per turn. Figures, side by side:

* ``unload after use`` - the baseline without a manager: every model moved in for each use and out after;
* ``hearth, fits two`` - the manager with a budget of 2.5 models: LRU eviction must never evict the large
  model, which stays resident from its first load to the end;
* ``hearth, fits all`` - the manager with room for everything: the floor (one load per model);
* ``hearth, fits 0.6`` - a budget smaller than the large model alone: it runs partially offloaded.

On a CUDA machine the models load to the GPU and seconds are real transfer times; on the CPU the "device" is the
CPU with a budget, so counts are exact and seconds only show the manager's own overhead.

    .venv/bin/python bench/memory_manager.py [--mb 64] [--steps 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from hearth.core.models.devices import default_device  # noqa: E402
from hearth.core.models.manager import ModelManager  # noqa: E402
from hearth.core.models.patches import PatchedModel  # noqa: E402


def make_model(name: str, mb: int, device: torch.device, width: int = 2048) -> PatchedModel:
    # Weights wait on the CPU and compute where the manager puts them: fp16 on a GPU, fp32 on the CPU.
    dtype = torch.float32 if device.type == "cpu" else torch.float16
    layers = max(1, mb * 2**20 // (width * width * dtype.itemsize))
    with torch.device("meta"):
        module = nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(layers)])
    module = module.to_empty(device="cpu").to(dtype).requires_grad_(False)
    for p in module.parameters():
        p.fill_(1.0 / width)
    return PatchedModel(module, name=name, load_device=device)


def workload(steps: int) -> list[str]:
    """unet every step; te1 and te2 in turns between steps (as two prompts encoded alternately)."""
    order = []
    for step in range(steps):
        order += ["te1" if step % 2 == 0 else "te2", "unet"]
    return order


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(policy: str, models: dict[str, PatchedModel], budget: int | None, steps: int, device: torch.device) -> dict:
    manager = ModelManager(device, budgets={str(device): budget} if budget is not None else None)
    first = next(iter(models.values())).module[0].weight
    x = torch.ones(1, first.shape[1], dtype=first.dtype, device=device)
    moved = 0
    peak_used = 0
    managing = computing = 0.0
    for name in workload(steps):
        model = models[name]
        before = manager.stats.loads
        start = time.perf_counter()
        manager.load(model)
        sync(device)
        loaded = time.perf_counter()
        if manager.stats.loads > before:
            moved += manager.loaded_models()[0].resident_bytes
        peak_used = max(peak_used, manager.used_bytes(device))
        with torch.no_grad():
            model.module(x)  # a partial model streams its offloaded layers here
        sync(device)
        computed = time.perf_counter()
        if policy == "unload after use":
            manager.unload(model)
            sync(device)
        managing += (loaded - start) + (time.perf_counter() - computed)
        computing += computed - loaded
    record = {r.name: r for r in manager.loaded_models()}
    result = {"policy": policy, "managing": managing, "computing": computing, "loads": manager.stats.loads, "evictions": manager.stats.evictions,
              "unet_loads": manager.stats.by_model.get("unet", 0) if policy != "unload after use" else steps,
              "partial": manager.stats.partial_loads, "moved": moved, "peak_used": peak_used, "budget": budget,
              "unet_resident": "unet" in record and not record["unet"].partial}
    manager.free(unload_models=True, free_memory=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="size of each small model in MiB (the unet is 2x)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else default_device()
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    models = {"unet": make_model("unet", 2 * args.mb, device),
              "te1": make_model("te1", args.mb, device), "te2": make_model("te2", args.mb, device)}
    unet, small = models["unet"].nbytes, models["te1"].nbytes
    fits_two = unet + small + small // 2  # the unet and one encoder, not both encoders
    runs = [run("unload after use", models, unet + 2 * small, args.steps, device),
            run("hearth, fits two", models, fits_two, args.steps, device),
            run("hearth, fits all", models, unet + 2 * small, args.steps, device),
            run("hearth, fits 0.6", models, int(0.6 * unet), args.steps, device)]

    mib = 2**20
    print(f"\ndevice {device}; unet {unet / mib:.0f} MiB, te1/te2 {small / mib:.0f} MiB each; "
          f"{args.steps} steps = {2 * args.steps} model uses\n")
    print(f"{'policy':<18} {'budget MiB':>10} {'loads':>6} {'evictions':>9} {'unet loads':>10} {'partial':>7} "
          f"{'moved MiB':>10} {'peak used MiB':>13} {'load+unload s':>13} {'forward s':>9}")
    for r in runs:
        budget = "-" if r["policy"] == "unload after use" else f"{r['budget'] / mib:.0f}"
        print(f"{r['policy']:<18} {budget:>10} {r['loads']:>6} {r['evictions']:>9} {r['unet_loads']:>10} "
              f"{r['partial']:>7} {r['moved'] / mib:>10.0f} {r['peak_used'] / mib:>13.0f} {r['managing']:>13.3f} "
              f"{r['computing']:>9.3f}")
    two = runs[1]
    verdict = "never reloaded" if two["unet_loads"] == 1 else f"RELOADED {two['unet_loads'] - 1} times"
    print(f"\nbudget fits two: {two['evictions']} evictions; the resident unet was {verdict}; "
          f"peak {two['peak_used'] / mib:.0f} MiB of {two['budget'] / mib:.0f} MiB")


if __name__ == "__main__":
    main()
