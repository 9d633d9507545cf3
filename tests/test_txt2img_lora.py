"""End to end: txt2img with a LoRA on tiny SD1 and SDXL checkpoints, as `comfy run` and a server run it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hearth.cli.main import cli
from hearth.core.context import Folders
from hearth.core.runtime import Runtime

WORKFLOWS = Path(__file__).resolve().parents[1] / "examples" / "workflows"
CASES = ["txt2img_lora_sd1_api.json", "txt2img_lora_sdxl_api.json"]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    result = CliRunner().invoke(cli, ["models", "make-tiny", "all", "--models-dir", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def executor(models_dir: Path, tmp_path: Path) -> Any:
    runtime = Runtime.build(models_dir=models_dir, output=tmp_path / "out", input=tmp_path / "in",
                            temp=tmp_path / "temp", environ={})
    with runtime.activate():
        yield runtime.executor


def load(name: str) -> dict[str, Any]:
    return json.loads((WORKFLOWS / name).read_text(encoding="utf-8"))


def saved_pixels(result: Any, folders: Folders) -> bytes:
    """The decoded pixels (the PNG's text chunks carry the prompt, which differs between these prompts)."""
    from PIL import Image

    image = result.outputs["9"]["images"][0]
    with Image.open(folders.output / image["subfolder"] / image["filename"]) as opened:
        return opened.tobytes()


@pytest.mark.parametrize("name", CASES)
def test_same_seed_gives_identical_png_bytes(name: str, models_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outputs = []
    for run in ("first", "second"):
        result = CliRunner().invoke(cli, ["run", str(WORKFLOWS / name), "--models-dir", str(models_dir),
                                          "--out", str(tmp_path / run)])
        assert result.exit_code == 0, result.output
        outputs.append(Path(result.stdout.split()[0]).read_bytes())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("name", CASES)
def test_changing_only_the_lora_strength_reruns_the_lora_and_what_follows(name: str, executor: Any) -> None:
    prompt = load(name)
    first = executor.run(prompt)
    assert first.ok, first.error
    changed = copy.deepcopy(prompt)
    changed["10"]["inputs"]["strength_model"] = 0.25
    second = executor.run(changed)
    assert second.ok, second.error
    assert sorted(second.executed) == sorted(["10", "6", "7", "3", "8", "9"])  # not the loader, not the latent
    assert saved_pixels(first, executor.folders) != saved_pixels(second, executor.folders)

    back = executor.run(prompt)  # the original strength again: same image, base weights restored exactly
    assert saved_pixels(back, executor.folders) == saved_pixels(first, executor.folders)


def test_lora_at_strength_zero_equals_no_lora(executor: Any) -> None:
    prompt = load(CASES[0])
    prompt["10"]["inputs"].update(strength_model=0.0, strength_clip=0.0)
    with_zero = saved_pixels(executor.run(prompt), executor.folders)
    without = copy.deepcopy(prompt)
    del without["10"]
    for node in without.values():
        for key, value in node["inputs"].items():
            if value == ["10", 0]:
                node["inputs"][key] = ["4", 0]
            elif value == ["10", 1]:
                node["inputs"][key] = ["4", 1]
    assert saved_pixels(executor.run(without), executor.folders) == with_zero
