"""Dump the intermediate tensors of one KSampler run through ComfyUI's or Hearth's own nodes, to find where they part.

Run by ``bench/comfyui_parity.py --probe SAMPLER:SCHEDULER`` in each venv: ``PYTHON bench/parity/probe.py
--project comfyui|hearth --checkpoint FILE --out DUMP.safetensors [--comfyui PATH] --sampler S --scheduler S
--steps N --size N [--lora FILE] [--batch N] [--area] [--img2img PNG --denoise D]``. It loads the checkpoint with CheckpointLoaderSimple (and LoraLoader),
encodes the harness's prompts with CLIPTextEncode and runs KSampler, recording the conditioning, the sigmas, the
initial noise, ``x`` and ``x0`` at every step (through the sampler's progress callback) and the result; the harness
then prints the first stage where the two dumps differ. Imports neither project at module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

POSITIVE = "a red fox in a snowy forest, detailed, sharp focus"
NEGATIVE = "blurry, low quality"
AREA_LEFT = "a castle on a hill"
AREA_RIGHT = "a calm lake at sunset"
# One ComfyUI rule switched off, to confirm a cause: its KSampler then runs without it.
SWITCHES = {"same_area": ("comfy.samplers", "create_cond_with_same_area_if_none")}
SEED = 42
CFG = 6.5


_ACTIVE: list = []


def _call(cls: type, **inputs: Any) -> tuple:
    out = getattr(cls(), cls.FUNCTION)(**inputs)
    return tuple(getattr(out, "result", out))


class Recorder:
    """The sampler's progress callback ``(step, x0, x, total)``: keeps every step's tensors."""

    def __init__(self) -> None:
        self.tensors: dict[str, Any] = {}

    def __call__(self, step: int, x0: Any, x: Any, total: int, *rest: Any) -> None:
        self.tensors[f"step{step:03d}.x0"] = x0.detach().float().cpu().clone()
        self.tensors[f"step{step:03d}.x"] = x.detach().float().cpu().clone()


def comfyui_nodes(comfyui: str, checkpoint: Path, lora: Path | None, recorder: Recorder, extra: list[str],
                  switches: list[str]) -> tuple[dict, Any]:
    sys.argv = [sys.argv[0], "--cpu", *extra]
    sys.path.insert(0, comfyui)
    import comfy.options

    comfy.options.enable_args_parsing()
    import folder_paths
    import latent_preview
    import nodes

    folder_paths.add_model_folder_path("checkpoints", str(checkpoint.parent), is_default=True)
    if lora is not None:
        folder_paths.add_model_folder_path("loras", str(lora.parent), is_default=True)
    latent_preview.prepare_callback = lambda *args, **kwargs: recorder
    import importlib

    import comfy.samplers

    for switch in switches:
        module, name = SWITCHES[switch]
        setattr(importlib.import_module(module), name, lambda *args, **kwargs: None)

    def sigmas(model, scheduler, steps):
        return comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, steps)

    return nodes.NODE_CLASS_MAPPINGS, sigmas


def hearth_nodes(checkpoint: Path, lora: Path | None, recorder: Recorder) -> tuple[dict, Any]:
    import tempfile

    import hearth_samplers.sampling as sampling

    from hearth.core.runtime import Runtime

    models = Path(tempfile.mkdtemp())
    (models / "checkpoints").mkdir()
    (models / "checkpoints" / checkpoint.name).symlink_to(checkpoint)
    if lora is not None:
        (models / "loras").mkdir()
        (models / "loras" / lora.name).symlink_to(lora)
    runtime = Runtime.build(models_dir=models, output=Path(tempfile.mkdtemp()))
    scope = runtime.activate()
    scope.__enter__()  # for the rest of the process: nodes find folders and the model manager here
    _ACTIVE.append(scope)  # a dropped scope would be closed, resetting the current Runtime
    sampling.progress_callback = lambda *args, **kwargs: recorder

    def sigmas(model, scheduler, steps):
        return sampling.calculate_sigmas(model.sampling, scheduler, steps)

    registry = runtime.nodes
    return {name: registry[name].cls for name in registry}, sigmas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", choices=("comfyui", "hearth"), required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--lora", type=Path)
    parser.add_argument("--out", required=True)
    parser.add_argument("--comfyui", default="")
    parser.add_argument("--comfyui-arg", action="append", default=[], help="more ComfyUI command-line options")
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--scheduler", default="normal")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--area", action="store_true",
                        help="positive = two half-image areas (ConditioningSetArea + ConditioningCombine)")
    parser.add_argument("--img2img", type=Path, help="start from this PNG, encoded with VAEEncode (as the harness's "
                        "img2img workflow), instead of an empty latent")
    parser.add_argument("--denoise", type=float, default=1.0)
    parser.add_argument("--comfyui-switch", action="append", default=[], choices=sorted(SWITCHES))
    args = parser.parse_args()
    recorder = Recorder()
    if args.project == "comfyui":
        classes, sigmas = comfyui_nodes(args.comfyui, args.checkpoint, args.lora, recorder, args.comfyui_arg,
                                         args.comfyui_switch)
    else:
        classes, sigmas = hearth_nodes(args.checkpoint, args.lora, recorder)
    import torch

    model, clip, vae = _call(classes["CheckpointLoaderSimple"], ckpt_name=args.checkpoint.name)
    if args.lora is not None:
        model, clip = _call(classes["LoraLoader"], model=model, clip=clip, lora_name=args.lora.name,
                            strength_model=1.0, strength_clip=1.0)
    (positive,) = _call(classes["CLIPTextEncode"], clip=clip, text=POSITIVE)
    (negative,) = _call(classes["CLIPTextEncode"], clip=clip, text=NEGATIVE)
    width = args.size
    if args.area:  # as the harness's area workflow: two 64-px-or-wider halves
        width, height = max(2 * args.size, 128), max(args.size, 64)
        halves = []
        for text, x in ((AREA_LEFT, 0), (AREA_RIGHT, width // 2)):
            (cond,) = _call(classes["CLIPTextEncode"], clip=clip, text=text)
            (cond,) = _call(classes["ConditioningSetArea"], conditioning=cond, width=width // 2, height=height,
                            x=x, y=0, strength=1.0)
            halves.append(cond)
        (positive,) = _call(classes["ConditioningCombine"], conditioning_1=halves[0], conditioning_2=halves[1])
    (latent,) = _call(classes["EmptyLatentImage"], width=width, height=max(args.size, 64) if args.area else args.size,
                      batch_size=args.batch)
    if args.img2img is not None:  # the pixels LoadImage gives, made here the same way for both projects
        import numpy as np
        from PIL import Image

        with Image.open(args.img2img) as image:
            pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)[None]
        (latent,) = _call(classes["VAEEncode"], pixels=pixels, vae=vae)
    tensors = {"cond.positive": positive[0][0].float(), "cond.negative": negative[0][0].float(),
               "sigmas": sigmas(model, args.scheduler, args.steps).float()}
    pooled = positive[0][1].get("pooled_output")
    if pooled is not None:
        tensors["cond.positive.pooled"] = pooled.float()
    (sampled,) = _call(classes["KSampler"], model=model, seed=SEED, steps=args.steps, cfg=CFG,
                       sampler_name=args.sampler, scheduler=args.scheduler, positive=positive,
                       negative=negative, latent_image=latent, denoise=args.denoise)
    if args.img2img is not None:
        tensors["encoded"] = latent["samples"].float()
    tensors.update(recorder.tensors)
    tensors["result"] = sampled["samples"].float()
    import safetensors.torch

    safetensors.torch.save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, args.out)
    print(json.dumps({"project": args.project, "stages": len(tensors), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
