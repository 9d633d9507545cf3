"""Benchmark of pack verification: static-scan throughput on a large generated pack, archive-check speed on
its zip, packs verified per second over the real benign packs with their false-positive count (first-party
plugins, the benign corpus, the test harness's packs: must stay 0 flagged) and how many of the issue-15 attack
packs are caught, and the time an isolated import of a small pack takes. Prints figures; not a test.

    .venv/bin/python bench/scan.py [--files 4000] [--imports 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hearth.sandbox import verify  # noqa: E402
from hearth.sandbox.archive import check_archive  # noqa: E402
from hearth.sandbox.isolate import import_pack  # noqa: E402
from hearth.sandbox.static import scan_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL_PACK = ROOT / "tests" / "sandbox" / "corpus" / "import" / "benign_comfy"

MODULE = '''"""Generated node module {index}: image helpers of the size and shape real packs have."""

import math
import os

import numpy as np

from .common import clamp, to_tensor

PRESETS = {presets}


class {name}:
    """{doc}"""

    CATEGORY = "generated/{category}"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {{
            "required": {{
                "image": ("IMAGE",),
                "strength": ("FLOAT", {{"default": {strength}, "min": 0.0, "max": 1.0, "step": 0.01}}),
                "preset": (list(PRESETS),),
            }},
            "optional": {{"mask": ("MASK",)}},
        }}

    def run(self, image, strength, preset, mask=None):
        weights = PRESETS[preset]
        out = np.asarray(image, dtype=np.float32)
        for i, w in enumerate(weights):
            out = out * (1 - strength) + clamp(out * w + i / {divisor}, 0.0, 1.0) * strength
        if mask is not None:
            out = out * mask + image * (1 - mask)
        cache = os.path.join(os.path.dirname(__file__), "cache", "{name}.npy")
        return to_tensor(out), math.sqrt(strength) * (mask if mask is not None else 1.0), cache
'''


def generate_pack(root: Path, files: int, seed: int = 6) -> tuple[int, int]:
    rng = random.Random(seed)
    words = "blend soft light mask edge glow sharpen blur noise tone curve level hue shadow detail".split()
    for index in range(files):
        folder = root / f"group_{index // 200:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        presets = {rng.choice(words) + str(k): [round(rng.random(), 3) for _ in range(rng.randint(3, 12))]
                   for k in range(rng.randint(4, 30))}
        text = MODULE.format(index=index, name=f"Node{index}", category=rng.choice(words), strength=rng.random(),
                             divisor=rng.randint(2, 99), presets=presets,
                             doc=" ".join(rng.choice(words) for _ in range(rng.randint(8, 40))))
        (folder / f"node_{index}.py").write_text(text)
    (root / "requirements.txt").write_text("numpy>=1.26\npillow\nopencv-python-headless\n")
    (root / "pyproject.toml").write_text('[project]\nname = "generated-pack"\nversion = "1.0.0"\n'
                                         'dependencies = ["numpy", "pillow"]\n')
    paths = [p for p in root.rglob("*") if p.is_file()]
    return len(paths), sum(p.stat().st_size for p in paths)


def best_of(runs: int, fn):  # noqa: ANN001, ANN201
    """Best wall-clock and CPU seconds over ``runs``; CPU time stays meaningful on a busy machine."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def rate(label: str, wall: float, cpu: float, files: int, mib: float) -> str:
    return (f"{label:15} {files / wall:8.0f} files/s {mib / wall:6.2f} MiB/s wall ({wall:.2f} s);"
            f" {files / cpu:8.0f} files/s {mib / cpu:6.2f} MiB/s CPU ({cpu:.2f} s)")


# Test packs that do on purpose what the scan exists to surface: flagged, and rightly so.
BY_DESIGN = {"routes_pack": ("network.call", "its /routes_pack/fetch route fetches any URL it is given"),
             "clash_pack": ("import.node-name-collision", "it registers the builtin ImageInvert on purpose")}


def _by_design(name: str, report) -> str:  # noqa: ANN001
    rule, why = BY_DESIGN.get(name, ("", ""))
    serious = {f.rule for f in report.findings if f.severity != "low"}
    return f"{rule}: {why}" if rule and serious == {rule} else ""


def benign_and_attacks(tmp: Path) -> None:
    """Packs per second and false positives over real benign packs; attack packs caught (archive + static)."""
    from tests.harness.packs import make_pack
    from tests.sandbox.test_sandbox_attacks import PACKS, attack_zip

    benign = [p for p in sorted((ROOT / "plugins").iterdir()) if (p / "pyproject.toml").exists()]
    benign += [ROOT / "tests" / "sandbox" / "corpus" / "import" / name for name in ("benign_comfy", "hearth_plugin")]
    for folder in ("tests/fixtures/custom_nodes", "tests/comfy_compat/packs", "tests/web/custom_nodes"):
        benign += [p for p in sorted((ROOT / folder).iterdir()) if p.is_dir() and p.name != "__pycache__"]
    harness = tmp / "harness"
    benign += [make_pack(harness, "plain"), make_pack(harness, "with-deps", requirements=("numpy>=1.24", "pillow")),
               make_pack(harness, "with-extras", extra_files={"web/app.js": "let a = 1;\n", "data/words.txt": "a\n"})]
    wall, cpu, reports = best_of(3, lambda: [verify(p, isolate_import=False) for p in benign])
    flagged = [(p.name, r.verdict) for p, r in zip(benign, reports, strict=True)
               if r.verdict != "pass" and not _by_design(p.name, r)]
    designed = [f"{p.name} ({_by_design(p.name, r)})" for p, r in zip(benign, reports, strict=True) if _by_design(p.name, r)]
    print(f"benign packs:    {len(benign) / wall:8.1f} packs/s wall, {len(benign) / cpu:8.1f} packs/s CPU"
          f" ({len(benign)} packs: plugins, benign corpus, test custom-node packs, harness packs; archive + static)"
          f"  [false positives: {len(flagged)} flagged{' ' + str(flagged) if flagged else ''}"
          f"{'; flagged by design: ' + ', '.join(designed) if designed else ''}]")
    if sys.platform.startswith("linux"):
        started = time.perf_counter()
        reports = [verify(p) for p in benign]
        wall = time.perf_counter() - started
        flagged = [(p.name, r.verdict) for p, r in zip(benign, reports, strict=True)
                   if r.verdict != "pass" and not _by_design(p.name, r)]
        designed = [p.name for p, r in zip(benign, reports, strict=True) if _by_design(p.name, r)]
        print(f"benign packs:    {len(benign) / wall:8.1f} packs/s wall with the isolated import"
              f"  [false positives: {len(flagged)} flagged{' ' + str(flagged) if flagged else ''}"
              f"{'; flagged by design: ' + ', '.join(designed) if designed else ''}]")
    zips = [attack_zip(name, tmp) for name in PACKS]
    wall, _, reports = best_of(1, lambda: [verify(z, isolate_import=False) for z in zips])
    missed = [name for name, r in zip(PACKS, reports, strict=True) if r.verdict == "pass"]
    print(f"attack packs:    {len(zips) / wall:8.1f} packs/s wall; caught {len(zips) - len(missed)}/{len(zips)}"
          f" by archive + static checks alone{' (missed: ' + ', '.join(missed) + ')' if missed else ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4000, help="Python files in the generated pack")
    parser.add_argument("--imports", type=int, default=10, help="isolated imports to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp:
        pack = Path(tmp) / "pack"
        count, size = generate_pack(pack, args.files)
        mib = size / 2**20
        print(f"generated pack: {count} files, {mib:.1f} MiB")

        wall, cpu, result = best_of(3, lambda: scan_folder(pack))
        print(rate("static scan:", wall, cpu, count, mib) + f"  [{len(result.findings)} findings]")

        archive = Path(tmp) / "pack.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(pack.rglob("*")):
                zf.write(path, path.relative_to(pack).as_posix())
        wall, cpu, findings = best_of(3, lambda: check_archive(archive))
        print(rate("archive check:", wall, cpu, count, archive.stat().st_size / 2**20)
              + f"  [zip, {len(findings)} findings]")

        benign_and_attacks(Path(tmp))

    if not sys.platform.startswith("linux"):
        print("isolated import: skipped (needs Linux namespaces)")
        return 0
    times = []
    for _ in range(args.imports):
        started = time.perf_counter()
        imported = import_pack(SMALL_PACK)
        times.append(time.perf_counter() - started)
        if not imported.import_ok:
            print(f"isolated import failed: {[f.rule for f in imported.findings]}")
            return 1
    print(f"isolated import of a small pack ({len(imported.nodes)} nodes): median {statistics.median(times) * 1000:.0f} ms,"
          f" min {min(times) * 1000:.0f} ms over {len(times)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
