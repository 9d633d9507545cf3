"""What the dtype policy buys on a CPU: one UNet call of a full-size SD1.5 UNet held fp32 vs fp16 cast per call.

A float16 SD1.5-layout UNet file (860M parameters, random weights from a seeded generator, every tensor non-zero)
is written to a temporary folder; then two child processes, one after the other, each load it through the model
manager and time the same batch-2 64x64 UNet call (one warm-up, then ``--repeats`` calls, same thread count):

- ``held``: the automatic budget, which has room for float32: the manager casts the weights once at load;
- ``per-call``: a fixed budget of 1.5x the file's bytes, too small for float32: the weights stay float16 and every
  layer casts its weight on every call (what Hearth did before the policy).

Each child reports its times, its peak resident memory (``ru_maxrss``: children do not share it) and the log line
the manager wrote; the parent prints them, the ratio of the best times, and whether both outputs are bit-identical.
It needs about 4 GB of free memory for the ``held`` child and 1.8 GB of disk; run it on a quiet machine.

``--interleaved`` loads both in this one process instead and alternates their calls: on a busy machine the fairer
comparison of times (no peak memory per policy then).

Run: ``.venv/bin/python bench/dtype_policy.py [--threads N] [--repeats N] [--rounds N] [--interleaved] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SEED = 0
BATCH, SIZE, CONTEXT = 2, 64, 77


def unet_config():
    from hearth_sd.families import FAMILIES

    return FAMILIES["sd1"].unet


def random_tensor(key: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """A float16 tensor scaled as an initialised layer would be (every value drawn, so every tensor is non-zero)."""
    noise = torch.randn(shape, generator=gen)
    if len(shape) >= 2:
        return (noise / math.sqrt(math.prod(shape[1:]))).half()
    if "norm" in key and key.endswith("weight"):
        return (1 + 0.02 * noise).half()
    return (0.02 * noise).half()


def write_unet(path: Path) -> int:
    """Write the float16 UNet file one tensor at a time (peak memory: one tensor); returns its tensor bytes."""
    from hearth_sd.unet import UNetModel

    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in UNetModel(unet_config()).state_dict().items()}
    header, offset = {}, 0
    for key in sorted(shapes):
        nbytes = math.prod(shapes[key]) * 2
        header[key] = {"dtype": "F16", "shape": list(shapes[key]), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    gen = torch.Generator().manual_seed(SEED)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for key in sorted(shapes):
            f.write(random_tensor(key, shapes[key], gen).numpy().tobytes())
    return offset


def load_unet(path: Path, policy: str):
    """The UNet from ``path`` as the manager loads it under ``policy``; returns the module, its PatchedModel,
    the stored bytes and the load's seconds. The manager's log lines go to the ``hearth.models`` logger."""
    from hearth_sd.ops import place
    from hearth_sd.unet import UNetModel

    from hearth.core.models import PatchedModel, load_into, load_state_dict
    from hearth.core.models.manager import ModelManager

    with torch.device("meta"):
        unet = UNetModel(unet_config())
    load_into(unet, load_state_dict(path), source=path)
    unet = place(unet.eval().requires_grad_(False), torch.device("cpu"), torch.float32)
    model = PatchedModel(unet, name=f"unet ({policy})", load_device="cpu")
    stored = model.nbytes
    manager = ModelManager("cpu", budgets={"cpu": stored * 3 // 2} if policy == "per-call" else None)
    start = time.perf_counter()
    manager.load(model, memory_required=0)
    return unet, model, stored, time.perf_counter() - start, manager


def unet_inputs(unet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(SEED + 1)
    x = torch.randn(BATCH, 4, SIZE, SIZE, generator=gen)
    context = torch.randn(BATCH, CONTEXT, unet.config.context_dim, generator=gen)
    return x, torch.tensor([999.0, 500.0])[:BATCH], context


def timed(unet, inputs) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    with torch.no_grad():
        out = unet(*inputs)
    return time.perf_counter() - start, out


def capture_log() -> list[str]:
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("hearth.models").addHandler(handler)
    return lines


def child(args: argparse.Namespace) -> None:
    """Load the file under one policy, time the UNet call, print one JSON line."""
    torch.set_num_threads(args.threads)
    lines = capture_log()
    unet, model, stored, load_s, _ = load_unet(Path(args.file), args.child)
    inputs = unet_inputs(unet)
    _, out = timed(unet, inputs)  # warm-up
    times = []
    for _ in range(args.repeats):
        seconds, out = timed(unet, inputs)
        times.append(seconds)
    torch.save(out, Path(args.out))
    print(json.dumps({"policy": args.child, "load_s": load_s, "times": times, "log": lines,
                      "weights_dtype": str(next(unet.parameters()).dtype), "stored_bytes": stored,
                      "held_bytes": model.nbytes, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def interleaved(path: Path, args: argparse.Namespace) -> None:
    """Both policies in this process, calls alternated: on a busy machine the fairest comparison of call times
    (peak memory is then the two models together, so it is not reported)."""
    torch.set_num_threads(args.threads)
    lines = capture_log()
    loaded = {policy: load_unet(path, policy) for policy in ("per-call", "held")}
    inputs = unet_inputs(loaded["held"][0])
    times: dict[str, list[float]] = {policy: [] for policy in loaded}
    outputs = {}
    for unet, *_rest in loaded.values():
        timed(unet, inputs)  # warm-up
    for _ in range(args.repeats):
        for policy, (unet, *_rest) in loaded.items():
            seconds, outputs[policy] = timed(unet, inputs)
            times[policy].append(seconds)
    print(f"SD1.5 UNet, batch {BATCH}, {SIZE}x{SIZE} latent, {args.threads} threads, {args.repeats} alternated calls "
          f"each in one process; load average {os.getloadavg()[0]:.1f} at the end")
    for line in lines:
        print(f"  log: {line}")
    for policy, found in times.items():
        print(f"  {policy:8}  best {min(found):6.2f} s  median {statistics.median(found):6.2f} s  "
              f"all {' '.join(f'{t:.2f}' for t in found)}")
    print(f"  ratio held / per-call: best {min(times['held']) / min(times['per-call']):.2f}, "
          f"median {statistics.median(times['held']) / statistics.median(times['per-call']):.2f}")
    print(f"  outputs bit-identical: {torch.equal(outputs['held'], outputs['per-call'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per child, after one warm-up")
    parser.add_argument("--rounds", type=int, default=1, help="children per policy, alternated")
    parser.add_argument("--interleaved", action="store_true",
                        help="both models in one process, calls alternated (times only; needs ~6 GB)")
    parser.add_argument("--keep", type=Path, help="folder for the UNet file (reused if there), default a temp dir")
    parser.add_argument("--child", choices=["held", "per-call"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "sd15-unet-random-fp16.safetensors"
        if not path.exists():
            start = time.perf_counter()
            nbytes = write_unet(path)
            print(f"wrote {path.name}: {nbytes / 1e9:.2f} GB float16 in {time.perf_counter() - start:.0f} s")
        if args.interleaved:
            interleaved(path, args)
            return
        results: dict[str, dict] = {}
        for _ in range(args.rounds):  # alternated, so a busy spell on the machine falls on both
            for policy in ("per-call", "held"):
                out = Path(tmp) / f"{policy}.pt"
                proc = subprocess.run([sys.executable, __file__, "--child", policy, "--file", str(path), "--out",
                                       str(out), "--threads", str(args.threads), "--repeats", str(args.repeats)],
                                      capture_output=True, text=True, check=False)
                if proc.returncode:
                    sys.exit(f"the {policy} run failed:\n{proc.stderr[-3000:]}")
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                r["output"] = torch.load(out)
                if policy in results:
                    r["times"] += results[policy]["times"]
                    r["peak_rss"] = max(r["peak_rss"], results[policy]["peak_rss"])
                    r["load_s"] = min(r["load_s"], results[policy]["load_s"])
                results[policy] = r
        print(f"SD1.5 UNet, batch {BATCH}, {SIZE}x{SIZE} latent, {args.threads} threads, "
              f"{args.rounds} x {args.repeats} timed calls each; load average {os.getloadavg()[0]:.1f} at the end")
        for policy, r in results.items():
            print(f"  {policy:8}  weights {r['weights_dtype']:13}  best {min(r['times']):6.2f} s  "
                  f"median {statistics.median(r['times']):6.2f} s  load {r['load_s']:5.1f} s  "
                  f"held {r['held_bytes'] / 1e9:.2f} GB  peak RSS {r['peak_rss'] / 1e9:.2f} GB")
            for line in r["log"]:
                print(f"            log: {line}")
        held, per_call = results["held"], results["per-call"]
        print(f"  ratio held / per-call (best times): {min(held['times']) / min(per_call['times']):.2f}")
        same = torch.equal(held["output"], per_call["output"])
        diff = (held["output"] - per_call["output"]).abs().max().item()
        print(f"  outputs bit-identical: {same} (max abs diff {diff:.3g})")


if __name__ == "__main__":
    main()
