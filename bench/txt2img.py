"""Tiny-model txt2img wall time, split into load / encode / sample / decode / save, for SD1 and SDXL with a LoRA.

Each workflow (examples/workflows/txt2img_lora_*_api.json) runs three times in one process: cold (files read,
nothing cached), again with only the seed changed (the loads and text encodings come from the cache), and again
with only the LoRA strength changed (the checkpoint stays loaded; the LoRA is re-patched and the text re-encoded).
Per-node times come from the executor's own ``executing`` events; "other" is what the executor adds around the
nodes (validation, scheduling, caching).

Run: .venv/bin/python bench/txt2img.py [--steps N]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHASES = {"CheckpointLoaderSimple": "load", "LoraLoader": "load", "CLIPTextEncode": "encode",
          "KSampler": "sample", "VAEDecode": "decode", "SaveImage": "save"}


def timed_run(executor: Any, prompt: dict[str, Any]) -> dict[str, float]:
    marks: list[tuple[float, str | None]] = []

    def on_event(event: str, data: dict[str, Any]) -> None:
        if event == "executing":
            marks.append((time.perf_counter(), data["node"]))

    start = time.perf_counter()
    result = executor.run(prompt, emit=on_event)
    total = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"workflow failed: {result.error or result.validation.first_problem()}")
    phases = dict.fromkeys(["load", "encode", "sample", "decode", "save"], 0.0)
    for (t0, node), (t1, _) in zip(marks, marks[1:], strict=False):
        if node is not None:
            phases[PHASES.get(prompt[node]["class_type"], "save")] += t1 - t0
    phases["other"] = total - sum(phases.values())
    phases["total"] = total
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()

    from click.testing import CliRunner

    from hearth.cli.main import cli
    from hearth.core.executor import Executor
    from hearth.core.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        made = CliRunner().invoke(cli, ["models", "make-tiny", "all", "--models-dir", str(models)])
        if made.exit_code != 0:
            raise SystemExit(made.output)
        runtime = Runtime.build(models_dir=models, output=Path(tmp) / "out", input=Path(tmp) / "in",
                                temp=Path(tmp) / "temp")
        header = f"{'run':<34}" + "".join(f"{p:>9}" for p in ("load", "encode", "sample", "decode", "save",
                                                                  "other", "total"))
        print(f"seconds per phase, {args.steps} steps, 64x64, tiny random-weight models")
        print(header)
        for family in ("sd1", "sdxl"):
            prompt = json.loads((ROOT / "examples" / "workflows" / f"txt2img_lora_{family}_api.json").read_text())
            prompt["3"]["inputs"]["steps"] = args.steps
            executor = Executor(runtime.nodes, cache="classic", folders=runtime.folders, plugins=runtime.plugins,
                                runtime=runtime)  # a fresh cache per family
            reseeded = copy.deepcopy(prompt)
            reseeded["3"]["inputs"]["seed"] += 1
            restrength = copy.deepcopy(reseeded)
            restrength["10"]["inputs"]["strength_model"] = 0.3
            for label, variant in ((f"{family} cold", prompt), (f"{family} new seed (baseline: cached)", reseeded),
                                   (f"{family} new LoRA strength", restrength)):
                row = timed_run(executor, variant)
                print(f"{label:<34}" + "".join(f"{row[k]:>9.3f}" for k in ("load", "encode", "sample", "decode",
                                                                            "save", "other", "total")))


if __name__ == "__main__":
    main()
