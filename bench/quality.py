"""Picture quality per sampler: how often the shipped trained model draws what the prompt asks, by steps and by CFG.

Every sampler KSampler offers samples the 20 captions of the shapes grammar ("a red circle", ...) as 64x64
pictures with the shipped trained SD1.x checkpoint (plugins/sd/hearth_sd/trained/models), through Hearth's own
nodes (tests/quality/harness.py), and the judge (plugins/sd/hearth_sd/trained/judge.py, trained on the data set
alone) checks colour and shape. A picture counts when both are right; chance is 5%.

Two tables per scheduler: accuracy by step count at one CFG, with the step count from which a sampler stays at or
above the quality tests' 90% bar ("converged"); and accuracy by CFG at one step count. These are the figures future
sampler work must not lower.

``--reference exact`` samples with the training set's exact denoiser instead of the UNet: the posterior mean over
the training latents of the prompt's caption (all of them for the empty prompt), what a model that learned its
4000 pictures perfectly would predict. For euler and the CFG++ samplers its figures are what the data itself
allows at that CFG, so where the UNet falls short of them the model is at fault. It is no ceiling for the high-order
and SDE samplers, which do worse with it than with the UNet: at low noise it snaps to the nearest training picture,
a jump their extrapolation carries forward. ``--exact-below SIGMA`` uses it only under that sigma and the UNet
above: at which noise levels the UNet loses the pictures the data allows.

``--trajectory`` instead judges, per sampler and scheduler at ``--cfg-steps`` steps and ``--cfg``, the denoised
estimate each step stepped with, beside the finished picture: it shows where a sampler settles the picture and
whether it keeps it (a sampler that draws every estimate right and then spoils the last step shows its peak far
above its final figure).

Run: .venv/bin/python bench/quality.py [--quick] [--samplers euler,heun] [--schedulers karras,normal]
     [--steps 5,10,20,40] [--cfgs 1,3,5,8] [--seeds 2] [--threads 1] [--json] [--trajectory]
     [--reference exact [--exact-below SIGMA]]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BAR = 0.90  # the quality tests' bar (tests/quality/test_sampler_quality.py)
QUICK_SAMPLERS = ("euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_sde", "uni_pc", "lcm")


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers of at least 1, got {text!r}")
    return values


def float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected CFG values of at least 0, got {text!r}")
    return values


def name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samplers", type=name_list, help="comma-separated sampler names (default: all KSampler offers)")
    p.add_argument("--schedulers", type=name_list, default=["karras"], help="comma-separated (default: karras)")
    p.add_argument("--steps", type=int_list, default=[5, 10, 20, 40], help="step counts of the first table")
    p.add_argument("--cfgs", type=float_list, default=[1.0, 3.0, 5.0, 8.0], help="CFG values of the second table")
    p.add_argument("--cfg", type=float, default=5.0, help="the CFG of the steps table (default 5)")
    p.add_argument("--cfg-steps", type=int, default=20, help="the step count of the CFG table (default 20)")
    p.add_argument("--seeds", type=int, default=1, help="noise seeds per point; 20 pictures each (default 1)")
    p.add_argument("--quick", action="store_true",
                   help=f"only {', '.join(QUICK_SAMPLERS)}, steps 10,20 and CFG 1,5 (unless given)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: many small batches)")
    p.add_argument("--models-dir", type=Path, help="a models folder holding the checkpoint (default: the shipped)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    p.add_argument("--reference", choices=("model", "exact"), default="model",
                   help="exact: sample with the training set's exact denoiser instead of the UNet (what the data "
                        "itself allows; see tests/quality/harness.py TrainingSetDenoiser)")
    p.add_argument("--exact-below", type=float, metavar="SIGMA",
                   help="with --reference exact: the exact denoiser only under this sigma, the UNet above it")
    p.add_argument("--trajectory", action="store_true",
                   help="judge each step's denoised estimate (at --cfg-steps and --cfg) instead of the two tables")
    return p


def converged_at(row: dict[int, float]) -> int | None:
    """The smallest step count from which every larger one measured is at or above the bar; None if none."""
    found = None
    for steps in sorted(row, reverse=True):
        if row[steps] < BAR:
            break
        found = steps
    return found


def steps_table(scheduler: str, cfg: float, results: dict[str, dict[int, float]], steps: list[int]) -> str:
    head = f"{'sampler':<32}" + "".join(f"{s:>7}" for s in steps) + f"{'converged':>11}"
    lines = [f"accuracy by steps ({scheduler}, CFG {cfg:g}; both attributes right, chance 5%)", head]
    for sampler, row in results.items():
        at = converged_at(row)
        lines.append(f"{sampler:<32}" + "".join(f"{row[s]:>7.0%}" for s in steps)
                     + f"{(str(at) + ' steps') if at else 'no':>11}")
    return "\n".join(lines)


def cfg_table(scheduler: str, steps: int, results: dict[str, dict[float, float]], cfgs: list[float]) -> str:
    head = f"{'sampler':<32}" + "".join(f"{'CFG ' + format(c, 'g'):>9}" for c in cfgs)
    lines = [f"accuracy by CFG ({scheduler}, {steps} steps)", head]
    for sampler, row in results.items():
        lines.append(f"{sampler:<32}" + "".join(f"{row[c]:>9.0%}" for c in cfgs))
    return "\n".join(lines)


def trajectory_table(scheduler: str, steps: int, cfg: float, results: dict[str, dict]) -> str:
    """One row per sampler: the finished picture's accuracy, the best estimate's (and its sigma), then each step's
    estimate as ``sigma accuracy``; ``results[sampler]`` is ``{"final": f, "steps": [(sigma, accuracy), ...]}``."""
    lines = [f"denoised estimate by step ({scheduler}, {steps} steps, CFG {cfg:g}; both attributes right)",
             f"{'sampler':<28}{'final':>6}{'peak':>6}{'at':>7}   each step: the sigma it started from, then its estimate"]
    for sampler, row in results.items():
        peak_sigma, peak = max(row["steps"], key=lambda step: step[1], default=(float("nan"), float("nan")))
        lines.append(f"{sampler:<28}{row['final']:>6.0%}{peak:>6.0%}{peak_sigma:>7.2f}   "
                     + "  ".join(f"{sigma:.2f} {acc:.0%}" for sigma, acc in row["steps"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.samplers = args.samplers or list(QUICK_SAMPLERS)
        if args.steps == parser().get_default("steps"):
            args.steps = [10, 20]
        if args.cfgs == parser().get_default("cfgs"):
            args.cfgs = [1.0, 5.0]
    if args.exact_below is not None and (args.reference != "exact" or not args.exact_below > 0):
        parser().error(f"--exact-below {args.exact_below}: give a sigma above 0, with --reference exact")

    import torch
    from hearth_sd.trained.judge import train_judge
    from hearth_sd.trained.shapes import all_captions
    from hearth_sd.trained.train import CHECKPOINT_NAME, SHIPPED_DIR

    from tests.quality.harness import Pipeline, torch_threads

    prompts = all_captions()
    started = time.perf_counter()
    with torch_threads(args.threads):
        pipe = Pipeline.open(args.models_dir or SHIPPED_DIR, CHECKPOINT_NAME)
        try:
            with pipe.runtime.activate():
                required = pipe.runtime.nodes["KSampler"].cls.INPUT_TYPES()["required"]
            offered, schedules = list(required["sampler_name"][0]), list(required["scheduler"][0])
            samplers = args.samplers or offered
            unknown = [s for s in samplers if s not in offered] + [s for s in args.schedulers if s not in schedules]
            if unknown:
                print(f"unknown sampler or scheduler: {', '.join(unknown)}; KSampler offers samplers "
                      f"{', '.join(offered)} and schedulers {', '.join(schedules)}", file=sys.stderr)
                return 2
            judge = train_judge()
            if args.reference == "exact":
                from hearth_sd.trained import train as script
                from hearth_sd.trained.shapes import make_shapes

                defaults = script.parser()
                data = make_shapes(defaults.get_default("images"), seed=defaults.get_default("seed"))
                pipe.use_training_set(data.images, data.captions, below=args.exact_below)

            def accuracy(sampler: str, scheduler: str, steps: int, cfg: float) -> float:
                images = torch.cat([pipe.txt2img(prompts, sampler=sampler, scheduler=scheduler, steps=steps,
                                                 cfg=cfg, seed=seed) for seed in range(args.seeds)])
                return judge.score(images, prompts * args.seeds).both

            def trajectory_row(sampler: str, scheduler: str) -> dict:
                batch = prompts * args.seeds  # every seed's 20 prompts in one batch: one run per sampler
                estimates, final = pipe.trajectory(batch, sampler=sampler, scheduler=scheduler,
                                                   steps=args.cfg_steps, cfg=args.cfg)
                return {"final": judge.score(final, batch).both,
                        "steps": [(sigma, judge.score(image, batch).both) for sigma, image in estimates]}

            figures: dict[str, dict[str, dict]] = {}
            for scheduler in args.schedulers:
                if args.trajectory:
                    rows = {s: trajectory_row(s, scheduler) for s in samplers}
                    figures[scheduler] = {"trajectory": rows}
                    tables = [trajectory_table(scheduler, args.cfg_steps, args.cfg, rows)]
                else:
                    by_steps = {s: {n: accuracy(s, scheduler, n, args.cfg) for n in args.steps} for s in samplers}
                    by_cfg = {}
                    for s in samplers:
                        known = by_steps[s].get(args.cfg_steps) if args.cfg in args.cfgs else None
                        by_cfg[s] = {c: (known if c == args.cfg and known is not None
                                         else accuracy(s, scheduler, args.cfg_steps, c)) for c in args.cfgs}
                    figures[scheduler] = {"by_steps": by_steps, "by_cfg": by_cfg}
                    tables = [steps_table(scheduler, args.cfg, by_steps, args.steps),
                              cfg_table(scheduler, args.cfg_steps, by_cfg, args.cfgs)]
                if not args.json:
                    for table in tables:
                        print(table)
                        print()
        finally:
            pipe.close()
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(f"{len(prompts) * args.seeds} pictures per point; {time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
