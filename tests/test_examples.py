"""Every example workflow runs through `comfy run`, against the tiny models of `comfy models make-tiny all`, and
writes the files it says it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from hearth.cli.main import cli
from hearth.core.plugins import PluginManager

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "workflows").glob("*.json"))
# Frontend-only nodes of UI-format files: the conversion to the API format drops them.
UI_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv"}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models folder for the whole module, filled as a user would: comfy models make-tiny all."""
    folder = tmp_path_factory.mktemp("models")
    result = CliRunner().invoke(cli, ["models", "make-tiny", "all", "--models-dir", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def registered() -> set[str]:
    return set(PluginManager().load(environ={}).nodes())


def node_types(workflow: Path) -> set[str]:
    data = json.loads(workflow.read_text(encoding="utf-8"))
    if "nodes" in data:
        return {node["type"] for node in data["nodes"]} - UI_ONLY
    return {node["class_type"] for node in data.values()}


def test_there_are_examples() -> None:
    assert EXAMPLES


def test_make_tiny_all_writes_every_model_the_examples_load(models_dir: Path) -> None:
    names = {p.relative_to(models_dir).as_posix() for p in models_dir.rglob("*.safetensors")}
    assert {"checkpoints/tiny-sd1.safetensors", "checkpoints/tiny-sdxl.safetensors", "vae/tiny-vae.safetensors",
            "embeddings/tiny-embedding.safetensors"} <= names
    for workflow in EXAMPLES:
        text = workflow.read_text(encoding="utf-8")
        for name in ("tiny-sd1", "tiny-sd2", "tiny-sdxl.", "tiny-sdxl-refiner", "tiny-vae", "tiny-clip-l",
                     "tiny-animatediff", "tiny-wan.", "tiny-umt5", "tiny-wan-vae"):
            if name in text:
                assert any(name in n for n in names), f"{workflow.name} loads {name}*, which make-tiny all lacks"


@pytest.mark.parametrize("workflow", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(workflow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path,
                      registered: set[str]) -> None:
    missing = node_types(workflow) - registered
    # The dev set-up installs every first-party plugin: a missing node means a plugin failed to load.
    assert not missing, f"{workflow.name} needs node(s) {', '.join(sorted(missing))}: see `comfy plugins`"
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", str(workflow), "--out", str(tmp_path / "out"),
                                      "--models-dir", str(models_dir)])
    assert result.exit_code == 0, result.output
    paths = [Path(line) for line in result.stdout.splitlines() if line.strip()]
    assert paths and all(p.is_file() for p in paths)
    if paths[0].suffix.lower() in VIDEO_SUFFIXES:  # video files carry the prompt as a container tag
        import av

        with av.open(str(paths[0])) as container:
            assert container.streams.video and json.loads(container.metadata["prompt"])
        return
    if paths[0].suffix.lower() == ".webp":  # animated WEBP: in EXIF's ImageDescription, where ComfyUI puts it
        with Image.open(paths[0]) as image:
            assert json.loads(image.getexif()[0x0110].removeprefix("prompt:"))
        return
    with Image.open(paths[0]) as image:
        assert json.loads(image.text["prompt"])
        if "_ui" in workflow.name:
            assert json.loads(image.text["workflow"])["nodes"]
