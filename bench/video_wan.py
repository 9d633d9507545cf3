"""Wan 2.1 text-to-video on tiny models: frames per second by stage, and the transformer's memory estimate vs peak.

Pipeline: ``examples/workflows/txt2video_wan_api.json`` against ``comfy models make-tiny wan``, run twice in one
process: cold (files read, nothing cached), then with only the seed changed (the loaders and text encodings come
from the executor's cache), the baseline for what a re-run costs. Stage times come from the executor's
``executing`` events; frames per second is the clip's frames over the stage's seconds.

Memory: one forward of a wider random Wan transformer (the tiny one's activations vanish in the allocator's
noise) on batch-2 video latents (a CFG pair) of growing length, each in a fresh child process. Measured: on CUDA
torch's peak allocated bytes above what was allocated before the forward; on the CPU the peak resident set
(VmHWM, reset through ``/proc/self/clear_refs`` right before the forward) above the resident set then, with
glibc's mmap threshold pinned so freed tensors leave the process. The baseline row is a one-frame latent measured
the same way. Estimate: what the model manager is told, through the plugins' ``memory_estimate_for_model`` hook.

Run: .venv/bin/python bench/video_wan.py [--frames 9] [--size 64] [--steps 4]   (bench/video.py runs it too)
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "plugins" / "video"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

MB = 2**20
WORKFLOW = ROOT / "examples" / "workflows" / "txt2video_wan_api.json"
STAGES = {"UNETLoader": "load", "CLIPLoader": "load", "VAELoader": "load", "CLIPTextEncode": "text encode",
          "EmptyHunyuanLatentVideo": "other", "ModelSamplingSD3": "other", "KSampler": "sampling",
          "VAEDecode": "decode", "CreateVideo": "save", "SaveVideo": "save"}
ORDER = ("load", "text encode", "sampling", "decode", "save", "other")
# The memory case's transformer: real structure, wide enough that its activations dominate the measurement.
MEMORY_CONFIG = {"dim": 256, "ffn_dim": 768, "num_heads": 2, "num_layers": 2, "text_dim": 64, "freq_dim": 64}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def timed_run(executor: Any, prompt: dict[str, Any]) -> dict[str, float]:
    marks: list[tuple[float, str | None]] = []

    def on_event(event: str, data: dict[str, Any]) -> None:
        if event == "executing":
            marks.append((time.perf_counter(), data["node"]))

    start = time.perf_counter()
    result = executor.run(prompt, emit=on_event)
    total = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"Wan workflow failed: {result.error or result.validation.first_problem()}")
    stages = dict.fromkeys(ORDER, 0.0)
    for (t0, node), (t1, _) in zip(marks, marks[1:], strict=False):
        if node is not None:
            stages[STAGES.get(prompt[node]["class_type"], "other")] += t1 - t0
    stages["other"] += total - sum(stages.values())
    stages["total"] = total
    return stages


def _fps(frames: int, seconds: float) -> str:
    return f"{frames / seconds:.1f}" if seconds > 1e-4 else "-"


def pipeline(frames: int, size: int, steps: int) -> None:
    import torch
    from click.testing import CliRunner

    from hearth.cli.main import cli
    from hearth.core.runtime import Runtime

    torch.set_num_threads(min(2, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        made = CliRunner().invoke(cli, ["models", "make-tiny", "wan", "--out", str(models)])
        if made.exit_code != 0:
            raise SystemExit(f"make-tiny wan failed: {made.output}")
        executor = Runtime.build(models_dir=models, output=Path(tmp) / "out", input=Path(tmp) / "in",
                                 temp=Path(tmp) / "temp").executor
        prompt = json.loads(WORKFLOW.read_text(encoding="utf-8"))
        prompt["6"]["inputs"].update(width=size, height=size, length=frames)
        prompt["8"]["inputs"]["steps"] = steps
        cold = timed_run(executor, prompt)
        again = copy.deepcopy(prompt)
        again["8"]["inputs"]["seed"] += 1
        warm = timed_run(executor, again)
    print(f"tiny Wan 2.1 txt2video: {frames} frames of {size}x{size}, {steps} euler steps, cfg (2 model calls per "
          f"step), CPU threads {torch.get_num_threads()}")
    print(f"{'stage':<14}{'cold s':>9}{'cold fps':>10}{'re-run s':>10}{'re-run fps':>12}")
    for stage in (*ORDER, "total"):
        c, w = cold[stage], warm[stage]
        print(f"{stage:<14}{c:>9.3f}{_fps(frames, c):>10}{w:>10.3f}{_fps(frames, w):>12}")


def child(frames: int, size: int, device: str) -> dict[str, Any]:
    """One forward of the memory-case transformer on ``[2, 16, T, size/8, size/8]`` in this fresh process."""
    import torch
    from hearth_video.wan_model import WanConfig, WanModel

    from hearth.core.models import ModelManager, PatchedModel
    from hearth.core.plugins import PluginManager

    torch.set_num_threads(min(2, torch.get_num_threads()))
    config = WanConfig(**MEMORY_CONFIG)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = WanModel(config).eval().to(device)
    module.compute_dtype = torch.float32
    patcher = PatchedModel(module, name="wan-memory-bench", load_device=device)
    estimate = ModelManager(device, plugins=PluginManager().load(environ={})).memory_estimate(
        patcher, (2, 16, (frames - 1) // 4 + 1, size // 8, size // 8), torch.float32)
    t = (frames - 1) // 4 + 1
    x = torch.randn(2, 16, t, size // 8, size // 8, device=device)
    timestep = torch.tensor([900.0, 900.0], device=device)
    context = torch.randn(2, 512, config.text_dim, device=device)
    with torch.inference_mode():
        module(x[:, :, :1, :2, :2], timestep, context[:, :8])  # warm-up: kernels chosen, pools made
    gc.collect()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _status_kb("VmRSS") * 1024
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    start = time.perf_counter()
    with torch.inference_mode():
        out = module(x, timestep, context)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() if cuda else _status_kb("VmHWM") * 1024) - base
    tokens = t * (size // 16) ** 2
    return {"frames": frames, "latent_frames": t, "tokens": tokens, "seconds": seconds, "peak": peak,
            "estimate": estimate, "output": out.numel() * out.element_size()}


def measure(frames: int, size: int, device: str) -> dict[str, Any]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0", OMP_NUM_THREADS="2")
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--frames", str(frames), "--size", str(size),
               "--device", device]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench child ({frames} frames) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(size: int, device: str, lengths: tuple[int, ...] = (1, 9, 17, 33)) -> None:
    cfg = MEMORY_CONFIG
    print(f"Wan transformer working memory, dim {cfg['dim']}, ffn {cfg['ffn_dim']}, {cfg['num_layers']} blocks "
          f"(random weights), batch 2 of {size}x{size} frames, 512 text tokens, {device}; each case in a fresh "
          f"process")
    print(f"{'frames':>7}{'tokens':>8}{'forward s':>11}{'peak MB':>10}{'estimate MB':>13}{'est/peak':>10}")
    for frames in lengths:
        row = measure(frames, size, device)
        label = f"{frames} (base)" if frames == lengths[0] else str(frames)
        print(f"{label:>7}{row['tokens']:>8}{row['seconds']:>11.3f}{row['peak'] / MB:>10.1f}"
              f"{row['estimate'] / MB:>13.1f}{row['estimate'] / max(row['peak'], 1):>10.2f}")


def bench_wan(frames: int = 9, size: int = 64, steps: int = 4, memory_size: int = 256,
              device: str | None = None) -> None:
    """Both parts, as ``bench/video.py`` calls it."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    pipeline(frames, size, steps)
    print()
    memory(memory_size, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=9, help="video frames (1 + 4k); default 9")
    parser.add_argument("--size", type=int, default=64, help="pipeline frame size in pixels; default 64")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--memory-size", type=int, default=256, help="frame size of the memory cases; default 256")
    parser.add_argument("--device", default=None, help="cpu or cuda for the memory cases (default: cuda if any)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.frames, args.size, args.device or "cpu")))
        return
    if (args.frames - 1) % 4 or args.size % 16 or args.memory_size % 16:
        raise SystemExit("--frames must be 1 + 4k, --size and --memory-size multiples of 16 (the latent's patches)")
    bench_wan(args.frames, args.size, args.steps, args.memory_size, args.device)


if __name__ == "__main__":
    main()
