"""Benchmark: load a full-size SD1.5-shaped checkpoint through hearth.core.models, beside reading it with safetensors alone.

The bench writes a checkpoint with the real SD1.5 key names and shapes (LDM layout: UNet, VAE, CLIP-L; random
fp16 weights, about 2.1 GB) into a temporary folder, then loads it several ways, each in a fresh subprocess so that
peak RSS (``ru_maxrss``) is the figure of that one load and not of the bench. Every load touches one byte of every
page of every tensor, so lazily mapped weights are counted as honestly as eagerly read ones. The file is in the page
cache for every run (it was just written and every run reads it), so the figures compare the loaders' own work.

Targets (issue 3): load <= 1.2x the raw safetensors read; peak RSS above the interpreter's baseline <= 1.1x the
weight bytes.

    .venv/bin/python bench/model_load.py [--dir DIR] [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# -- the SD1.5 key layout (CompVis LDM naming, as in v1-5-pruned-emaonly) -------------------------------------


def _resblock(p: str, cin: int, cout: int, emb: int | None = 1280) -> dict[str, tuple[int, ...]]:
    keys = {f"{p}.in_layers.0.weight": (cin,), f"{p}.in_layers.0.bias": (cin,),
            f"{p}.in_layers.2.weight": (cout, cin, 3, 3), f"{p}.in_layers.2.bias": (cout,),
            f"{p}.emb_layers.1.weight": (cout, emb), f"{p}.emb_layers.1.bias": (cout,),
            f"{p}.out_layers.0.weight": (cout,), f"{p}.out_layers.0.bias": (cout,),
            f"{p}.out_layers.3.weight": (cout, cout, 3, 3), f"{p}.out_layers.3.bias": (cout,)}
    if cin != cout:
        keys |= {f"{p}.skip_connection.weight": (cout, cin, 1, 1), f"{p}.skip_connection.bias": (cout,)}
    return keys


def _transformer(p: str, ch: int, context: int = 768) -> dict[str, tuple[int, ...]]:
    b = f"{p}.transformer_blocks.0"
    keys = {f"{p}.norm.weight": (ch,), f"{p}.norm.bias": (ch,),
            f"{p}.proj_in.weight": (ch, ch, 1, 1), f"{p}.proj_in.bias": (ch,),
            f"{p}.proj_out.weight": (ch, ch, 1, 1), f"{p}.proj_out.bias": (ch,),
            f"{b}.ff.net.0.proj.weight": (ch * 8, ch), f"{b}.ff.net.0.proj.bias": (ch * 8,),
            f"{b}.ff.net.2.weight": (ch, ch * 4), f"{b}.ff.net.2.bias": (ch,)}
    for attn, kv in (("attn1", ch), ("attn2", context)):
        keys |= {f"{b}.{attn}.to_q.weight": (ch, ch), f"{b}.{attn}.to_k.weight": (ch, kv),
                 f"{b}.{attn}.to_v.weight": (ch, kv), f"{b}.{attn}.to_out.0.weight": (ch, ch),
                 f"{b}.{attn}.to_out.0.bias": (ch,)}
    for n in (1, 2, 3):
        keys |= {f"{b}.norm{n}.weight": (ch,), f"{b}.norm{n}.bias": (ch,)}
    return keys


def sd15_unet(prefix: str = "model.diffusion_model.") -> dict[str, tuple[int, ...]]:
    mc, mult, attn_levels, nres = 320, (1, 2, 4, 4), {0, 1, 2}, 2
    keys = {"time_embed.0.weight": (1280, mc), "time_embed.0.bias": (1280,),
            "time_embed.2.weight": (1280, 1280), "time_embed.2.bias": (1280,),
            "input_blocks.0.0.weight": (mc, 4, 3, 3), "input_blocks.0.0.bias": (mc,)}
    chans, ch, i = [mc], mc, 1
    for level, m in enumerate(mult):
        for _ in range(nres):
            keys |= _resblock(f"input_blocks.{i}.0", ch, mc * m)
            ch = mc * m
            if level in attn_levels:
                keys |= _transformer(f"input_blocks.{i}.1", ch)
            chans.append(ch)
            i += 1
        if level != len(mult) - 1:
            keys |= {f"input_blocks.{i}.0.op.weight": (ch, ch, 3, 3), f"input_blocks.{i}.0.op.bias": (ch,)}
            chans.append(ch)
            i += 1
    keys |= _resblock("middle_block.0", ch, ch) | _transformer("middle_block.1", ch) | _resblock("middle_block.2", ch, ch)
    i = 0
    for level, m in reversed(list(enumerate(mult))):
        for j in range(nres + 1):
            keys |= _resblock(f"output_blocks.{i}.0", ch + chans.pop(), mc * m)
            ch, sub = mc * m, 1
            if level in attn_levels:
                keys |= _transformer(f"output_blocks.{i}.1", ch)
                sub = 2
            if level and j == nres:
                keys |= {f"output_blocks.{i}.{sub}.conv.weight": (ch, ch, 3, 3), f"output_blocks.{i}.{sub}.conv.bias": (ch,)}
            i += 1
    keys |= {"out.0.weight": (mc,), "out.0.bias": (mc,), "out.2.weight": (4, mc, 3, 3), "out.2.bias": (4,)}
    return {prefix + k: v for k, v in keys.items()}


def _vae_res(p: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    keys = {f"{p}.norm1.weight": (cin,), f"{p}.norm1.bias": (cin,), f"{p}.conv1.weight": (cout, cin, 3, 3),
            f"{p}.conv1.bias": (cout,), f"{p}.norm2.weight": (cout,), f"{p}.norm2.bias": (cout,),
            f"{p}.conv2.weight": (cout, cout, 3, 3), f"{p}.conv2.bias": (cout,)}
    if cin != cout:
        keys |= {f"{p}.nin_shortcut.weight": (cout, cin, 1, 1), f"{p}.nin_shortcut.bias": (cout,)}
    return keys


def _vae_mid(p: str, ch: int) -> dict[str, tuple[int, ...]]:
    keys = _vae_res(f"{p}.block_1", ch, ch) | _vae_res(f"{p}.block_2", ch, ch)
    keys |= {f"{p}.attn_1.norm.weight": (ch,), f"{p}.attn_1.norm.bias": (ch,)}
    for n in ("q", "k", "v", "proj_out"):
        keys |= {f"{p}.attn_1.{n}.weight": (ch, ch, 1, 1), f"{p}.attn_1.{n}.bias": (ch,)}
    return keys


def sd15_vae(prefix: str = "first_stage_model.") -> dict[str, tuple[int, ...]]:
    ch, mult, nres, z = 128, (1, 2, 4, 4), 2, 4
    keys = {"encoder.conv_in.weight": (ch, 3, 3, 3), "encoder.conv_in.bias": (ch,)}
    block_in = ch
    for i, m in enumerate(mult):
        for j in range(nres):
            keys |= _vae_res(f"encoder.down.{i}.block.{j}", block_in, ch * m)
            block_in = ch * m
        if i != len(mult) - 1:
            keys |= {f"encoder.down.{i}.downsample.conv.weight": (block_in, block_in, 3, 3),
                     f"encoder.down.{i}.downsample.conv.bias": (block_in,)}
    keys |= _vae_mid("encoder.mid", block_in)
    keys |= {"encoder.norm_out.weight": (block_in,), "encoder.norm_out.bias": (block_in,),
             "encoder.conv_out.weight": (2 * z, block_in, 3, 3), "encoder.conv_out.bias": (2 * z,),
             "decoder.conv_in.weight": (block_in, z, 3, 3), "decoder.conv_in.bias": (block_in,)}
    keys |= _vae_mid("decoder.mid", block_in)
    for i in reversed(range(len(mult))):
        for j in range(nres + 1):
            keys |= _vae_res(f"decoder.up.{i}.block.{j}", block_in, ch * mult[i])
            block_in = ch * mult[i]
        if i != 0:
            keys |= {f"decoder.up.{i}.upsample.conv.weight": (block_in, block_in, 3, 3),
                     f"decoder.up.{i}.upsample.conv.bias": (block_in,)}
    keys |= {"decoder.norm_out.weight": (ch,), "decoder.norm_out.bias": (ch,),
             "decoder.conv_out.weight": (3, ch, 3, 3), "decoder.conv_out.bias": (3,),
             "quant_conv.weight": (2 * z, 2 * z, 1, 1), "quant_conv.bias": (2 * z,),
             "post_quant_conv.weight": (z, z, 1, 1), "post_quant_conv.bias": (z,)}
    return {prefix + k: v for k, v in keys.items()}


def sd15_clip(prefix: str = "cond_stage_model.transformer.text_model.") -> dict[str, tuple[int, ...]]:
    d = 768
    keys = {"embeddings.token_embedding.weight": (49408, d), "embeddings.position_embedding.weight": (77, d),
            "final_layer_norm.weight": (d,), "final_layer_norm.bias": (d,)}
    for n in range(12):
        p = f"encoder.layers.{n}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            keys |= {f"{p}.self_attn.{proj}.weight": (d, d), f"{p}.self_attn.{proj}.bias": (d,)}
        keys |= {f"{p}.layer_norm1.weight": (d,), f"{p}.layer_norm1.bias": (d,),
                 f"{p}.layer_norm2.weight": (d,), f"{p}.layer_norm2.bias": (d,),
                 f"{p}.mlp.fc1.weight": (4 * d, d), f"{p}.mlp.fc1.bias": (4 * d,),
                 f"{p}.mlp.fc2.weight": (d, 4 * d), f"{p}.mlp.fc2.bias": (d,)}
    return {prefix + k: v for k, v in keys.items()}


SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2")


def sd15_layout() -> dict[str, tuple[tuple[int, ...], str]]:
    """Every key of an SD1.5 checkpoint with its shape and safetensors dtype (weights F16, schedule F32)."""
    layout: dict[str, tuple[tuple[int, ...], str]] = {}
    for part in (sd15_unet(), sd15_vae(), sd15_clip()):
        layout |= {k: (s, "F16") for k, s in part.items()}
    layout["cond_stage_model.transformer.text_model.embeddings.position_ids"] = ((1, 77), "I64")
    layout |= {name: ((1000,), "F32") for name in SCHEDULE_BUFFERS}
    return layout


# -- writing the checkpoint ---------------------------------------------------------------------------------


def write_checkpoint(path: Path, layout: dict[str, tuple[tuple[int, ...], str]], seed: int = 0) -> int:
    """Stream random weights into a safetensors file one tensor at a time (never the whole 2 GB in memory)."""
    import torch

    from hearth.core.models.loading import ITEMSIZE

    header, offset = {}, 0
    for key, (shape, dtype) in layout.items():
        size = ITEMSIZE[dtype]
        for n in shape:
            size *= n
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt", "hearth.bench": "sd15-shaped random weights"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep tensor data 8-byte aligned, as the safetensors writer does
    gen = torch.Generator().manual_seed(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for shape, dtype in layout.values():
            if dtype == "I64":
                tensor = torch.arange(shape[-1], dtype=torch.int64).expand(shape).contiguous()
            else:
                tensor = (torch.randn(shape, generator=gen) * 0.02).to(torch.float16 if dtype == "F16" else torch.float32)
            f.write(tensor.numpy().tobytes())
    return offset


# -- one load, in its own process ---------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _touch(state) -> int:
    """Read one byte of every page of every tensor: makes lazily mapped weights resident, as inference would."""
    import torch

    total = 0
    for tensor in state.values():
        flat = tensor.reshape(-1).view(torch.uint8)
        total += int(flat[::4096].sum())
    return total


def worker(mode: str, path: str) -> dict:
    import resource
    import time

    import torch

    if mode.startswith("safetensors"):
        from safetensors.torch import load_file
    from hearth.core.models import loading

    torch.set_num_threads(1)
    before = _rss_bytes()
    start = time.perf_counter()
    if mode == "safetensors":
        state = load_file(path)
    elif mode == "safetensors-pread":
        state = load_file(path, backend="pread")
    else:
        state = loading.load_state_dict(path)
    loaded = time.perf_counter()
    _touch(state)
    end = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    weights = sum(t.numel() * t.element_size() for t in state.values())
    return {"mode": mode, "seconds": end - start, "load_call": loaded - start, "rss_before": before,
            "peak_rss": peak, "weights": weights, "tensors": len(state)}


def run_worker(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", mode, str(path)], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="folder for the generated checkpoint (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per loader; the median is shown")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--ckpt", action="store_true", help="also load a .ckpt copy through torch.load(mmap=True)")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sd15-shaped.safetensors"
    layout = sd15_layout()
    try:
        print(f"writing {path} ({len(layout)} tensors) ...", flush=True)
        weight_bytes = write_checkpoint(path, layout)
        modes = ["safetensors", "hearth"]
        if args.ckpt:
            import torch

            from hearth.core.models.loading import load_state_dict

            torch.save(load_state_dict(path), folder / "sd15-shaped.ckpt")
            modes.append("hearth-ckpt")
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        run_worker("safetensors", path)  # warm the page cache so every measured run reads from memory
        for _ in range(args.repeat):
            for mode in modes:  # interleaved, so drift on the machine hits every loader alike
                target = folder / "sd15-shaped.ckpt" if mode == "hearth-ckpt" else path
                runs[mode].append(run_worker(mode, target))
        report(runs, weight_bytes)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def report(runs: dict[str, list[dict]], weight_bytes: int) -> None:
    gib = 1024**3
    base = statistics.median(r["seconds"] for r in runs["safetensors"])
    print(f"\nSD1.5-shaped checkpoint: {weight_bytes / gib:.2f} GiB of weights; median of "
          f"{len(runs['safetensors'])} runs; page cache warm; one byte per page touched\n")
    print(f"{'loader':<14} {'seconds':>8} {'x raw':>6} {'of which call':>13} {'peak RSS GiB':>13} "
          f"{'above baseline GiB':>19} {'x weights':>10}")
    for mode, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        call = statistics.median(r["load_call"] for r in results)
        peak = statistics.median(r["peak_rss"] for r in results)
        above = statistics.median(r["peak_rss"] - r["rss_before"] for r in results)
        print(f"{mode:<14} {seconds:>8.3f} {seconds / base:>6.2f} {call:>13.3f} {peak / gib:>13.2f} {above / gib:>19.2f} "
              f"{above / weight_bytes:>10.2f}")
    print("\nseconds: the load call plus touching every page; 'of which call' is the load call alone")
    print("targets: hearth load <= 1.2x safetensors; peak RSS above baseline <= 1.1x weights")


if __name__ == "__main__":
    main()
