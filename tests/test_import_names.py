"""Hearth's installed import names cannot collide: its wheels ship only `hearth*` names, and stray top-level
`cli`/`core`/`web` modules beside the `comfy` script (what a pack's requirement can drop into a venv's bin/) break
no command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = ["."] + sorted(
    str(p.parent.relative_to(ROOT)) for p in (ROOT / "plugins").glob("*/pyproject.toml")
)


def top_level_names(wheel: Path) -> set[str]:
    """The import names a wheel installs: its top-level packages and modules (not its metadata)."""
    names = set()
    with zipfile.ZipFile(wheel) as archive:
        for entry in archive.namelist():
            first = entry.split("/")[0]
            if first.endswith((".dist-info", ".data")):
                continue
            names.add(first.removesuffix(".py") if "/" not in entry else first)
    return names


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """Every distribution's wheel, built in one pip run from copies (so no build/ or egg-info folder lands in
    the checkout), by source folder."""
    work = tmp_path_factory.mktemp("wheels")
    sources = {}
    for folder in DISTRIBUTIONS:
        source = work / "src" / (Path(folder).name if folder != "." else "comfy-hearth")
        shutil.copytree(
            ROOT / folder,
            source,
            ignore=shutil.ignore_patterns(
                "__pycache__",
                "*.egg-info",
                "build",
                "dist",
                ".venv",
                "tests",
                "bench",
                "registry-data",
                ".git",
                "plugins",
            ),
        )
        sources[folder] = source
    out = work / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            *map(str, sources.values()),
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr
    built = {}
    for folder, source in sources.items():
        project = tomllib.loads((source / "pyproject.toml").read_text())["project"]["name"]
        [wheel] = out.glob(f"{project.replace('-', '_')}-*.whl")
        built[folder] = wheel
    return built


@pytest.mark.parametrize("folder", DISTRIBUTIONS)
def test_every_wheel_installs_only_hearth_import_names(folder, wheels):
    wheel = wheels[folder]
    names = top_level_names(wheel)
    assert names, f"{wheel.name} installs no import package"
    strays = sorted(n for n in names if not n.startswith("hearth"))
    assert not strays, f"{wheel.name} installs top-level import names outside hearth*: {strays}"


@pytest.fixture
def bin_with_strays(tmp_path):
    """A bin/ folder like a venv's after a pack's requirement dropped cli.py, core.py and web.py into it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    comfy = shutil.which("comfy", path=str(Path(sys.executable).parent))
    assert comfy, "the comfy script is not installed beside this interpreter"
    shutil.copy2(comfy, bin_dir / "comfy")
    for name in ["cli", "core", "web"]:
        (bin_dir / f"{name}.py").write_text(f"raise RuntimeError('the stray {name}.py was imported')\n")
    return bin_dir


def run_comfy(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(bin_dir), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [str(bin_dir / "comfy"), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=240
    )


def test_stray_cli_core_web_modules_break_no_comfy_command(bin_with_strays, tmp_path):
    workflow = tmp_path / "wf.json"
    workflow.write_text(
        json.dumps(
            {
                "1": {
                    "class_type": "EmptyImage",
                    "inputs": {"width": 4, "height": 3, "batch_size": 1, "color": 255},
                },
                "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "stray"}},
            }
        )
    )
    shown = run_comfy(bin_with_strays, "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "run" in shown.stdout and "nodes" in shown.stdout

    listed = run_comfy(bin_with_strays, "nodes", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "SaveImage" in json.loads(listed.stdout) or "SaveImage" in listed.stdout

    checked = run_comfy(bin_with_strays, "run", "--check", str(workflow), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "stray" not in checked.stderr
    assert not list(tmp_path.rglob("stray*.png")), "--check ran the workflow"
