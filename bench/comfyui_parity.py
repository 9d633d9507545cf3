"""Same workflow, same checkpoint, same seed on real ComfyUI and on Hearth: pixel, latent, speed and memory parity.

Run: ``.venv/bin/python bench/comfyui_parity.py --comfyui PATH [--comfyui-python PYTHON] [--family sd15|sdxl]
[--samplers euler,dpmpp_2m:karras,...] [--steps 4] [--size 64]``.

PATH is a ComfyUI checkout (fetched from its public repository, outside this one) and PYTHON the interpreter of a
venv with its requirements (torch the same version as Hearth's). The harness writes a full-size random-weight
checkpoint in the published layout (seeded, every tensor non-zero, fp16; cached under ``--cache-dir``), a kohya
LoRA for it and an input image; times one UNet call through each project's own loader (``parity/unet_call.py``);
then runs ComfyUI's server and Hearth's ``comfy serve``, each on 127.0.0.1 with its folders under a temp dir,
through the same API workflows: every sampler both list with the normal and karras schedules, a LoRA, img2img at
denoise 0.6, an area-conditioned prompt and a batch of 2. ``--mode interleaved`` (SD1.5's default) keeps both
servers up and alternates them, so both see the same machine load; ``sequential`` (SDXL's) never holds both
models. It prints per workflow the max and mean PNG difference and the float latent difference, the UNet call,
the warm run and each server's peak resident memory, and the targets with PASS/FAIL: every PNG identical,
Hearth's warm run and peak RSS at most ComfyUI's. Servers are stopped on exit, Ctrl-C included.
``--probe SAMPLER:SCHEDULER`` instead runs one KSampler in-process on each side and prints where they part.
``--sampler-audit`` needs no checkpoint: every sampler on a toy denoiser in each venv, for every model sampling
family (eps, rectified flow, AuraFlow's, Flux's), every scheduler and 1 to 11 steps, compared bit for bit
(``parity/sampler_audit.py``); about 4 minutes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
# Importing Hearth (below) turns on PyTorch's huge pages for large tensors in this process's environment. Each side
# must run as shipped: ComfyUI's processes get the environment the harness was started with, and Hearth's set it
# themselves. (A ComfyUI user who sets THP_MEM_ALLOC_ENABLE=1 gets the same speed-up.)
_USER_THP = os.environ.get("THP_MEM_ALLOC_ENABLE")

from parity import checkpoint as ckpt  # noqa: E402
from parity import report, servers, session, workflows  # noqa: E402

importlib.import_module("hearth")  # now, so its setting is made (and undone below) before any subprocess starts
if _USER_THP is None:
    os.environ.pop("THP_MEM_ALLOC_ENABLE", None)

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "hearth-parity-cache"
IMAGE_NAME = "parity-input.png"


def comfyui_version(path: Path) -> str:
    """``__version__`` of the checkout and its git commit where it has one (or the marker the fetch left)."""
    version = "unknown version"
    text = (path / "comfyui_version.py").read_text() if (path / "comfyui_version.py").exists() else ""
    if m := re.search(r'__version__\s*=\s*"([^"]+)"', text):
        version = m.group(1)
    commit = ""
    try:
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    marker = path / ".hearth_parity_commit"
    if not commit and marker.exists():
        commit = marker.read_text().strip()
    return f"ComfyUI {version}" + (f" ({commit})" if commit else "")


def pick_samplers(spec: str | None, comfy: list[str], hearth: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(sampler, scheduler) pairs to run, and the samplers only one side lists. ``spec`` is a comma list of
    ``name`` (both schedules) or ``name:scheduler``; without it every sampler both list."""
    common = [s for s in comfy if s in hearth]
    only = sorted(set(comfy) ^ set(hearth))
    if not spec:
        return [(s, sch) for s in common for sch in workflows.SCHEDULERS], only
    pairs = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, scheduler = item.partition(":")
        if name not in common:
            raise SystemExit(f"--samplers: {name!r} is not listed by both servers; common ones: {', '.join(common)}")
        pairs += [(name, scheduler)] if scheduler else [(name, sch) for sch in workflows.SCHEDULERS]
    return pairs, only


def unet_calls(args: argparse.Namespace, checkpoint: Path, work: Path) -> list[report.Measure]:
    """Time one UNet call in each venv, one after the other; print the output difference."""
    results = {}
    for project, python in (("comfyui", args.comfyui_python), ("hearth", Path(sys.executable))):
        out = work / f"unet-{project}.safetensors"
        command = [str(python), str(BENCH / "parity" / "unet_call.py"), "--project", project,
                   "--checkpoint", str(checkpoint), "--out", str(out), "--comfyui", str(args.comfyui),
                   *(f"--comfyui-arg={a}" for a in args.comfyui_arg)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        line = next((x for x in reversed(done.stdout.splitlines()) if x.startswith("{")), None)
        if done.returncode or line is None:
            print(f"UNet call ({project}) failed:\n{done.stderr[-2000:]}")
            results[project] = None
            continue
        results[project] = json.loads(line)
        print(f"UNet call {project}: best {results[project]['best_s']:.3f} s of {results[project]['times_s']}, "
              f"weights {results[project]['weights']}, load {results[project]['load_s']:.1f} s")
    if all(results.values()):
        import safetensors.torch

        a = safetensors.torch.load_file(str(work / "unet-comfyui.safetensors"))["out"]
        b = safetensors.torch.load_file(str(work / "unet-hearth.safetensors"))["out"]
        print(f"UNet call output: max |ComfyUI - Hearth| = {(a.double() - b.double()).abs().max().item():.3g}")
    return [report.Measure("one UNet call (batch 2, 8x8 latent)",
                           (results.get("comfyui") or {}).get("best_s"), (results.get("hearth") or {}).get("best_s"),
                           "s")]


def probe(args: argparse.Namespace, checkpoint: Path, lora: Path, image: Path, work: Path) -> int:
    """Run ``parity/probe.py`` in each venv for one sampler and print each stage's difference, first one first."""
    sampler, _, scheduler = args.probe.partition(":")
    dumps = {}
    for project, python in (("comfyui", args.comfyui_python), ("hearth", Path(sys.executable))):
        out = work / f"probe-{project}.safetensors"
        command = [str(python), str(BENCH / "parity" / "probe.py"), "--project", project, "--checkpoint",
                   str(checkpoint), "--out", str(out), "--comfyui", str(args.comfyui), "--sampler", sampler,
                   "--scheduler", scheduler or "normal", "--steps", str(args.steps), "--size", str(args.size),
                   *(f"--comfyui-arg={a}" for a in args.comfyui_arg)]
        if args.probe_lora:
            command += ["--lora", str(lora)]
        if args.probe_area:
            command += ["--area"]
        if args.probe_img2img:
            command += ["--img2img", str(image), "--denoise", str(workflows.IMG2IMG_DENOISE)]
        command += [f"--comfyui-switch={name}" for name in args.comfyui_switch]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if done.returncode:
            print(f"probe ({project}) failed:\n{done.stderr[-3000:]}")
            return 2
        import safetensors.torch

        dumps[project] = safetensors.torch.load_file(str(out))
    what = "".join((" + LoRA" if args.probe_lora else "", " + areas" if args.probe_area else "",
                    f" + img2img at denoise {workflows.IMG2IMG_DENOISE}" if args.probe_img2img else "",
                    *(f", ComfyUI without {name}" for name in args.comfyui_switch)))
    print(f"probe {args.probe}{what}: max |ComfyUI - Hearth| per stage")
    for key in sorted(set(dumps["comfyui"]) | set(dumps["hearth"])):
        a, b = dumps["comfyui"].get(key), dumps["hearth"].get(key)
        if a is None or b is None or a.shape != b.shape:
            print(f"  {key:<24} only in {'Hearth' if a is None else 'ComfyUI'}" if a is None or b is None
                  else f"  {key:<24} shapes {tuple(a.shape)} vs {tuple(b.shape)}")
            continue
        diff = (a.double() - b.double()).abs().max().item()
        print(f"  {key:<24} {diff:.3g}  (|ComfyUI| max {a.abs().max().item():.3g})")
    return 0


def sampler_audit(args: argparse.Namespace, work: Path) -> int:
    """Run ``parity/sampler_audit.py`` in each venv and print, per sampler, the largest latent difference over its
    cases (eps, flow, AuraFlow and Flux model sampling, every scheduler, 1 to 11 steps) and the first case that differs (a case
    that raises on one side only differs; on both, it agrees)."""
    dumps = {}
    for project, python in (("comfyui", args.comfyui_python), ("hearth", Path(sys.executable))):
        out = work / f"sampler-audit-{project}.safetensors"
        command = [str(python), str(BENCH / "parity" / "sampler_audit.py"), "--project", project, "--out", str(out),
                   "--comfyui", str(args.comfyui)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if done.returncode:
            print(f"sampler audit ({project}) failed:\n{done.stderr[-3000:]}")
            return 2
        import safetensors.torch

        dumps[project] = safetensors.torch.load_file(str(out))
    from parity import sampler_audit as audit

    rows, nan_cases = audit.compare(dumps["comfyui"], dumps["hearth"])
    extras = ("/sigmas", f"/sigmas-d{audit.DENOISE}", "/timesteps", "/raises")
    cases = sorted({case.rsplit("/", 1)[0] if case.endswith(extras) else case for _, case, _ in rows})
    print(f"sampler audit: {len(cases)} cases per sampler ({', '.join(cases)}); max |ComfyUI - Hearth| of the "
          f"latents, the KSampler schedules (denoise 1 and {audit.DENOISE}) and their timesteps")
    if nan_cases:
        print(f"left out where ComfyUI's own schedule is NaN (every sampler but those that drop the penultimate sigma, "
              f"which ask for one more step): {', '.join(nan_cases)}")
    print("| sampler | latent max diff | schedule and timestep max diff | first case that differs |")
    print("| --- | --- | --- | --- |")
    identical = 0
    names = sorted({name for name, _, _ in rows})
    for name in names:
        mine = [(case, diff) for n, case, diff in rows if n == name]
        latent = [diff for case, diff in mine if not case.endswith(extras)]
        schedule = [diff for case, diff in mine if case.endswith(extras[:3])]
        differ = [case for case, diff in mine if diff is None or diff != 0]

        def worst(diffs):
            return "missing" if None in diffs else f"{max(diffs):.3g}"

        identical += not differ
        print(f"| {name} | {worst(latent)} | {worst(schedule)} | {differ[0] if differ else ''} |")
    verdict = "PASS" if identical == len(names) else "FAIL"
    print(f"{verdict}  every sampler bit-identical in every case: {identical}/{len(names)}")
    return 0 if verdict == "PASS" else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", type=Path, required=True, help="a ComfyUI checkout (its main.py)")
    parser.add_argument("--comfyui-python", type=Path, help="its venv's python (default PATH/venv or .venv)")
    parser.add_argument("--family", choices=sorted(ckpt.FAMILIES), default="sd15")
    parser.add_argument("--samplers", help="comma list: NAME (normal and karras) or NAME:SCHEDULER")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--no-extras", action="store_true", help="only the sampler workflows")
    parser.add_argument("--skip-unet", action="store_true", help="skip the UNet call timing")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--work-dir", type=Path, help="keep servers' folders here (default: a temp dir, removed)")
    parser.add_argument("--comfyui-arg", action="append", default=[], metavar="OPTION",
                        help="one more option for ComfyUI's main.py (repeatable), e.g. --use-pytorch-cross-attention")
    parser.add_argument("--mode", choices=("interleaved", "sequential"),
                        help="both servers up, alternating (default for sd15), or one after the other (sdxl)")
    parser.add_argument("--max-minutes", type=float, help="start no new workflow after this long; print what ran")
    parser.add_argument("--threads", type=int, help="torch threads for both servers (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the rows and figures here")
    parser.add_argument("--sampler-audit", action="store_true",
                        help="instead of the servers: every sampler on a toy denoiser in each venv (eps, flow, "
                             "AuraFlow and Flux model sampling, every scheduler, 1 to 11 steps), latents compared bit for bit")
    parser.add_argument("--probe", metavar="SAMPLER[:SCHEDULER]",
                        help="instead of the servers: one KSampler run in-process on each side, every stage compared")
    parser.add_argument("--probe-lora", action="store_true", help="with --probe: through the LoRA")
    parser.add_argument("--probe-img2img", action="store_true",
                        help="with --probe: from the input image encoded, at the img2img workflow's denoise")
    parser.add_argument("--probe-area", action="store_true", help="with --probe: the area-conditioned prompt")
    parser.add_argument("--comfyui-switch", action="append", default=[], metavar="RULE",
                        help="with --probe: switch one ComfyUI rule off (same_area) to confirm a cause")
    args = parser.parse_args(argv)
    if not (args.comfyui / "main.py").exists():
        parser.error(f"--comfyui {args.comfyui}: no main.py there; give the folder of a ComfyUI checkout")
    if args.comfyui_python is None:
        found = [p for p in (args.comfyui / "venv/bin/python", args.comfyui / ".venv/bin/python") if p.exists()]
        if not found:
            parser.error("--comfyui-python is needed: no venv/ or .venv/ in the ComfyUI folder")
        args.comfyui_python = found[0]
    if args.size % 8 or args.size < 16:
        parser.error(f"--size {args.size}: must be a multiple of 8, at least 16")
    return args


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C and a plain kill both unwind through the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, _interrupt)
    version = comfyui_version(args.comfyui)
    if args.sampler_audit:
        print(f"{version} at {args.comfyui}; Hearth at {BENCH.parent}")
        with tempfile.TemporaryDirectory(prefix="hearth-audit-") as work:
            return sampler_audit(args, Path(work))
    print(f"{version} at {args.comfyui}; Hearth at {BENCH.parent}; family {args.family}, {args.steps} steps, "
          f"{args.size}x{args.size}")
    start = time.perf_counter()
    checkpoint = ckpt.make_checkpoint(args.family, args.cache_dir / ckpt.CHECKPOINT_NAMES[args.family])
    lora = ckpt.make_lora(args.family, args.cache_dir / f"parity-lora-{args.family}.safetensors")
    image = ckpt.make_input_image(args.cache_dir / f"parity-input-{args.size}.png", args.size)
    print(f"checkpoint {checkpoint} ({checkpoint.stat().st_size / 2**30:.2f} GiB), LoRA {lora.name}: "
          f"{time.perf_counter() - start:.1f} s")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="hearth-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.probe:
            return probe(args, checkpoint, lora, image, work)
        return _compare(args, version, checkpoint, lora, image, work)
    except KeyboardInterrupt:
        print("interrupted: servers stopped")
        return 130
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def _prompts(args, pairs, checkpoint: Path, lora: Path, latents: Path) -> dict[str, dict]:
    settings = workflows.Settings(checkpoint.name, lora.name, args.steps, args.size, IMAGE_NAME, latents)
    # The LoRA, img2img, area and batch workflows first: a --max-minutes cut then drops samplers, not them.
    found = {} if args.no_extras else workflows.all_workflows(settings, [])
    found.update(workflows.sampler_workflow(settings, s, sch) for s, sch in pairs)
    return found


def _warm(args, checkpoint: Path, lora: Path, latents: Path):
    settings = workflows.Settings(checkpoint.name, lora.name, args.steps, args.size, IMAGE_NAME, latents)
    return lambda seed: workflows.warm_workflow(settings, seed)


def _compare(args, version, checkpoint: Path, lora: Path, image: Path, work: Path) -> int:
    models = work / "models"
    for kind, source in (("checkpoints", checkpoint), ("loras", lora)):
        (models / kind).mkdir(parents=True, exist_ok=True)
        link = models / kind / source.name
        if not link.exists():
            link.symlink_to(source)
    pack = BENCH / "parity" / "latent_pack"
    sides = {}
    for side in ("comfyui", "hearth"):
        (work / side / "input").mkdir(parents=True, exist_ok=True)
        shutil.copy(image, work / side / "input" / IMAGE_NAME)
        sides[side] = (work / side, work / side / "input", work / side / "output", work / side / "latents")

    def start_comfyui():
        base, inputs, outputs, _ = sides["comfyui"]
        return servers.start_comfyui(args.comfyui, args.comfyui_python, base, models, pack, inputs, outputs,
                                     args.threads, args.comfyui_arg)

    def start_hearth():
        base, inputs, outputs, _ = sides["hearth"]
        return servers.start_hearth(Path(sys.executable), base / "server", models, pack, inputs, outputs,
                                    args.threads)

    measures = [] if args.skip_unet else unet_calls(args, checkpoint, work)
    lists = {}
    for side, start in (("hearth", start_hearth), ("comfyui", start_comfyui)):
        server = start()
        try:
            server.wait_ready()
            lists[side] = server.samplers()[0]
        finally:
            server.stop()
    pairs, only = pick_samplers(args.samplers, lists["comfyui"], lists["hearth"])
    if only:
        print(f"samplers only one side lists (not compared): {', '.join(only)}")
    comfy_side, hearth_side = (
        session.Side(label, start, _prompts(args, pairs, checkpoint, lora, sides[side][3]),
                     _warm(args, checkpoint, lora, sides[side][3]), sides[side][2], sides[side][3])
        for side, label, start in (("comfyui", "ComfyUI", start_comfyui), ("hearth", "Hearth", start_hearth)))
    names = list(comfy_side.prompts)
    deadline = time.monotonic() + (args.max_minutes * 60 if args.max_minutes else 1e9)
    mode = args.mode or ("interleaved" if args.family == "sd15" else "sequential")
    print(f"{len(names)} workflows, {mode}", flush=True)
    run = session.interleaved if mode == "interleaved" else session.sequential
    rows = run(comfy_side, hearth_side, names, deadline)
    figure = {"comfyui": comfy_side.figures, "hearth": hearth_side.figures}
    warm = report.Measure("warm run (euler, seed changed; best of 3)", figure["comfyui"].get("warm_run_s"),
                          figure["hearth"].get("warm_run_s"), "s")
    rss = report.Measure("server peak RSS (process tree)", figure["comfyui"].get("peak_rss") or None,
                         figure["hearth"].get("peak_rss") or None, "bytes")
    measures += [report.Measure("server ready", figure["comfyui"].get("ready_s"), figure["hearth"].get("ready_s"),
                                "s"),
                 report.Measure("first run (load + run)", figure["comfyui"].get("first_run_s"),
                                figure["hearth"].get("first_run_s"), "s"), warm, rss]
    found = report.targets(rows, warm, rss)
    print()
    print(f"{version} vs Hearth, {args.family}, {args.steps} steps, {args.size}x{args.size}, CPU, {mode}")
    print(report.table(rows))
    print()
    print(report.measures_table(measures))
    print()
    print(report.targets_text(found))
    if args.json:
        args.json.write_text(json.dumps({
            "comfyui": version, "family": args.family, "steps": args.steps, "size": args.size,
            "rows": [vars(r) for r in rows], "measures": [vars(m) for m in measures],
            "targets": [{"target": n, "pass": ok, "detail": d} for n, ok, d in found]}, indent=2))
    return 0 if all(ok for _, ok, _ in found) else 1


if __name__ == "__main__":
    sys.exit(main())
