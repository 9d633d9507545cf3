"""LoRA cost on a full-size SD1 UNet: reading a file once, patching, and what a strength change costs afterwards.

A rank-32 kohya LoRA on every transformer projection of the SD1 UNet (192 modules, as style LoRAs train) is
written to a temp file, then timed: the first read (disk, parse), a cached read, matching and adding the patches
to a clone, patching the weights, a strength change (new clone, re-patch from the backups: no file read), and the
restore. The UNet's weights are random float16 (no download); the arithmetic is what a real file costs.

Run: .venv/bin/python bench/lora.py [--device cpu|cuda] [--rank 32] [--repeat 3]
Targets: a strength change re-patches without reading the file (reads stay at one); re-patching costs about
what the first patch did; the restore is a swap of tensors (milliseconds).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from hearth_lora.apply import patch_parts  # noqa: E402
from hearth_lora.loading import clear_cache, load_lora  # noqa: E402
from hearth_lora.names import res_blocks_per_level, unet_diffusers_path  # noqa: E402
from hearth_sd.families import SD1  # noqa: E402
from hearth_sd.unet import UNetModel  # noqa: E402

import hearth.core.models.loading  # noqa: E402
from hearth.core.models import PatchedModel, write_safetensors  # noqa: E402

TRAINED = re.compile(r".*\.(proj_in|proj_out|attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.[02](\.proj)?)\.weight")


def random_unet(device: str) -> torch.nn.Module:
    with torch.device("meta"):
        unet = UNetModel(SD1.unet)
    unet = unet.to_empty(device=device).to(torch.float16).requires_grad_(False)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for p in unet.parameters():
            p.normal_(0.0, 0.02, generator=gen)
    return unet


def write_lora(unet: torch.nn.Module, path: Path, rank: int) -> int:
    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    per_level = res_blocks_per_level(shapes)
    gen = torch.Generator().manual_seed(1)
    tensors = {}
    for key, shape in shapes.items():
        if TRAINED.fullmatch(key):
            name = "lora_unet_" + unet_diffusers_path(key[:-7], per_level).replace(".", "_")
            tensors[f"{name}.lora_up.weight"] = (torch.randn(shape[0], rank, generator=gen) * 0.01).half()
            tensors[f"{name}.lora_down.weight"] = (torch.randn(rank, shape[1], *([1] * (len(shape) - 2)),
                                                               generator=gen) * 0.01).half()
            tensors[f"{name}.alpha"] = torch.tensor(float(rank) / 2, dtype=torch.float16)
    write_safetensors(tensors, path, {"ss_network_dim": str(rank)})
    return len(tensors) // 3


def timed(fn, sync) -> float:
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    reads = {"n": 0}
    real_open = hearth.core.models.loading._open

    def counting_open(path):
        reads["n"] += 1
        return real_open(path)

    hearth.core.models.loading._open = counting_open
    unet = random_unet(args.device)
    base = PatchedModel(unet, name="sd1-unet", load_device=args.device, offload_device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-lora.safetensors"
        modules = write_lora(unet, path, args.rank)
        clear_cache()
        rows = {"first read (file, parse)": [timed(lambda: load_lora(path), sync)]}
        opens_after_first = reads["n"]
        lora = load_lora(path).parsed
        for name in ("cached read", "clone + match + add patches", "patch weights (strength 1.0)",
                     "strength change: re-patch (0.5)", "restore original weights"):
            rows[name] = []
        for _ in range(args.repeat):
            rows["cached read"].append(timed(lambda: load_lora(path), sync))
            strong, weak = base.clone(), base.clone()
            rows["clone + match + add patches"].append(
                timed(lambda clone=strong: patch_parts(lora, {"unet": clone}, {"unet": 1.0}), sync))
            patch_parts(lora, {"unet": weak}, {"unet": 0.5})
            rows["patch weights (strength 1.0)"].append(timed(strong.patch_weights, sync))
            rows["strength change: re-patch (0.5)"].append(timed(weak.patch_weights, sync))
            rows["restore original weights"].append(timed(base.patch_weights, sync))
        size = path.stat().st_size
    print(f"SD1 UNet on {args.device}, LoRA rank {args.rank}: {modules} modules, {size / 2**20:.1f} MiB file")
    for name, values in rows.items():
        print(f"  {name:<34} {statistics.median(values) * 1000:9.1f} ms  (median of {len(values)})")
    print(f"  file opens: {opens_after_first} on the first read, {reads['n'] - opens_after_first} after")


if __name__ == "__main__":
    main()
