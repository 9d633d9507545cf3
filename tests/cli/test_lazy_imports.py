"""With a fresh node catalogue, listing and checking commands import neither torch nor any plugin's modules; a run
imports torch only when a node that needs it runs.

Each command runs in a fresh process with every first-party plugin installed (their modules import torch); the
process reports which modules it ended up with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_nodes_cache import catalogue_state, rebuilt_by_others

# Runs one command like the `comfy` script, then writes the heavy modules the process imported to the file $REPORT.
PROBE = """
import json, os, sys
from hearth.cli.main import main
try:
    code = main(sys.argv[1:])
finally:
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "safetensors"}
                   or m.startswith(("hearth_sd", "hearth_samplers", "hearth_lora", "hearth_video", "hearth_upscale",
                                    "hearth_audio", "hearth_comfy_compat.")))
    with open(os.environ["REPORT"], "w") as out:
        json.dump(heavy, out)
sys.exit(code)
"""

WORKFLOW = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
            "2": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 1, "steps": 1, "cfg": 1.0,
                                                       "sampler_name": "euler", "scheduler": "normal",
                                                       "positive": ["3", 0], "negative": ["3", 0],
                                                       "latent_image": ["4", 0], "denoise": 1.0}},
            "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a cat"}},
            "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "5": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}}}


def imported_by(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The result of `comfy ARGS` and the heavy modules it imported. Run again if someone edited Hearth's own
    files in this checkout meanwhile: that rebuild is no fault of the command (`run --check` leaves it to a
    background build, which no test starts unasked: `comfy nodes` rebuilds it here)."""
    for _ in range(3):
        before = catalogue_state(folder)
        result, heavy = _imported_by(folder, *args)
        if args[0] == "run" and "--check" in args and heavy:
            _imported_by(folder, "nodes", "--json")
        elif not rebuilt_by_others(before, catalogue_state(folder)):
            break
    return result, heavy


def _imported_by(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    env = {**os.environ, "HEARTH_CACHE_DIR": str(folder / "cache"), "HEARTH_HOME": str(folder / "home"),
           "HEARTH_ISOLATION": "off"}
    for name in ("HEARTH_PLUGINS", "HEARTH_DISABLE_PLUGINS", "HEARTH_CUSTOM_NODES", "HEARTH_CATALOGUE", "COMFY_ENV"):
        env.pop(name, None)
    report = folder / "imported.json"
    report.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=folder, env={**env, "REPORT": str(report)},
                            capture_output=True, text=True, timeout=180)
    heavy = json.loads(report.read_text()) if report.exists() else None
    assert heavy is not None, result.stderr
    return result, heavy


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder whose catalogue one ordinary `comfy nodes` built (that one imports everything)."""
    folder = tmp_path_factory.mktemp("lazy")
    (folder / "models" / "checkpoints").mkdir(parents=True)
    (folder / "models" / "checkpoints" / "tiny.safetensors").write_bytes(b"x")
    (folder / "workflow.json").write_text(json.dumps(WORKFLOW))
    result, heavy = _imported_by(folder, "nodes", "--json")
    assert result.returncode == 0, result.stderr
    assert "torch" in heavy, "building the catalogue loads the plugins (what every command did before)"
    return folder


@pytest.mark.parametrize("args", [
    ("nodes", "--json"),
    ("plugins", "--json"),
    ("run", "--check", "workflow.json"),
    ("env", "list"),
    ("list",),
], ids=" ".join)
def test_a_fresh_catalogue_answers_without_torch_or_plugin_modules(warm: Path, args: tuple[str, ...]) -> None:
    result, heavy = imported_by(warm, *args)
    assert result.returncode == 0, result.stderr
    assert heavy == [], f"`comfy {' '.join(args)}` imported {heavy[:8]}"
    if args[0] == "run":  # the model pack's nodes were checked from the catalogue, and found valid
        assert result.stdout.startswith("ok: 5 nodes, outputs 5"), result.stdout


def test_run_imports_torch_only_when_a_node_that_needs_it_runs(warm: Path) -> None:
    (warm / "numbers.json").write_text(json.dumps({
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": 3}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}))
    result, heavy = imported_by(warm, "run", "numbers.json")
    assert result.returncode == 0, result.stderr
    assert "torch" not in heavy, "every plugin loads, but none imports torch until one of its nodes needs it"
