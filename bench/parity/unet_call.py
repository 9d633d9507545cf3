"""Time one UNet call of a checkpoint through ComfyUI's or Hearth's own loader; run by the parity harness in each venv.

Run: ``PYTHON bench/parity/unet_call.py --project comfyui|hearth --checkpoint FILE --out RESULT.safetensors
[--comfyui PATH] [--repeats N]``. The checkpoint is loaded as each project loads it for a run (ComfyUI's
``load_checkpoint_guess_config`` + ``load_models_gpu``; Hearth's ``load_model_file`` + the model manager's
``prepare``), then ``unet(x, t, context[, y])`` is timed on a batch of 2 at 8x8 (a 64x64 image) after one warm-up
call. Inputs are drawn from a fixed torch seed, so both venvs (same torch) feed the same tensors; the output is
saved for the harness to compare. Prints one JSON line: times, the weight dtype held, and the load time.
This file imports neither project at module level: it must run in ComfyUI's venv, which has no Hearth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

_ACTIVE: list = []


def inputs(context_dim: int, adm: int | None):
    import torch

    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(2, 4, 8, 8, generator=gen)
    t = torch.tensor([999.0, 499.0])
    context = torch.randn(2, 77, context_dim, generator=gen)
    y = torch.randn(2, adm, generator=gen) if adm else None
    return x, t, context, y


def comfyui_unet(checkpoint: str, comfyui: str, extra: list[str]):
    """ComfyUI's diffusion model, loaded as its CheckpointLoaderSimple and KSampler load it on the CPU."""
    sys.argv = [sys.argv[0], "--cpu", *extra]  # comfy.cli_args reads the command line at import
    sys.path.insert(0, comfyui)
    import comfy.options

    comfy.options.enable_args_parsing()  # as main.py does; otherwise the command line is ignored
    import comfy.model_management
    import comfy.sd

    patcher = comfy.sd.load_checkpoint_guess_config(checkpoint, output_vae=False, output_clip=False)[0]
    comfy.model_management.load_models_gpu([patcher])
    unet = patcher.model.diffusion_model

    def call(x, t, context, y):
        return unet(x, timesteps=t, context=context, y=y)

    return call, unet


def hearth_unet(checkpoint: str):
    """Hearth's UNet, loaded as its CheckpointLoaderSimple and KSampler load it (model manager, dtype policy)."""
    import tempfile

    from hearth.core.models import load_model_file
    from hearth.core.runtime import Runtime

    runtime = Runtime.build(models_dir=Path(checkpoint).parent, output=Path(tempfile.mkdtemp()))
    scope = runtime.activate()
    scope.__enter__()  # kept active for the rest of the process: the model manager lives in it
    _ACTIVE.append(scope)  # a dropped scope would be closed, resetting the current Runtime
    model = load_model_file("checkpoints", checkpoint)[0]
    model.prepare((2, 4, 8, 8))
    unet = model.diffusion.unet

    def call(x, t, context, y):
        return unet(x, t, context, y)

    return call, unet


def dump_modules(unet) -> dict:
    """Forward hooks that record each submodule's first tensor input and its output under ``mNNNN.<name>``;
    both projects name the UNet's modules as the published checkpoint does, so the dumps line up by name."""
    import torch

    found: dict = {"__handles__": []}
    order = [0]

    def hook(name):
        def record(module, args, output):
            order[0] += 1
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if first is not None:
                found[f"m{order[0]:04d}.{name}.in"] = first.detach().float().contiguous().clone()
            if isinstance(output, torch.Tensor):
                found[f"m{order[0]:04d}.{name}.out"] = output.detach().float().contiguous().clone()
        return record

    for name, module in unet.named_modules():
        if name:
            found["__handles__"].append(module.register_forward_hook(hook(name)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", choices=("comfyui", "hearth"), required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--comfyui", default="")
    parser.add_argument("--comfyui-arg", action="append", default=[], help="more ComfyUI command-line options")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dump-modules", action="store_true",
                        help="also save every UNet submodule's first input and output, in call order")
    args = parser.parse_args()
    if args.project == "hearth":
        import hearth  # noqa: F401 - before torch: Hearth's process settings (huge pages for large tensors)
    import torch

    start = time.perf_counter()
    if args.project == "comfyui":
        call, unet = comfyui_unet(args.checkpoint, args.comfyui, args.comfyui_arg)
    else:
        call, unet = hearth_unet(args.checkpoint)
    load_s = time.perf_counter() - start
    weights = {str(p.dtype).removeprefix("torch.") for p in unet.parameters()}
    context_dim = 2048 if any(p.shape[-1] == 2048 for p in unet.parameters() if p.ndim == 2) else 768
    adm = next((p.shape[1] for n, p in unet.named_parameters() if n.startswith("label_emb.0.0.")), None)
    x, t, context, y = inputs(context_dim, adm)
    dumped = dump_modules(unet) if args.dump_modules else None
    if dumped is not None:
        with torch.no_grad():
            call(x, t, context, y)
        for handle in dumped.pop("__handles__"):
            handle.remove()
    times = []
    with torch.no_grad():
        out = call(x, t, context, y)  # warm-up: first-call allocations and any lazy cast
        for _ in range(args.repeats):
            begin = time.perf_counter()
            out = call(x, t, context, y)
            times.append(time.perf_counter() - begin)
    import safetensors.torch

    saved = {"out": out.detach().float().contiguous()}
    if dumped is not None:  # keys sort in call order: "m0001.input_blocks.0.0.out"
        saved.update(dumped)
    safetensors.torch.save_file(saved, args.out)
    print(json.dumps({"project": args.project, "best_s": min(times), "times_s": times, "load_s": load_s,
                      "weights": sorted(weights), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
