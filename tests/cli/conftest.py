"""Run ``comfy`` in a fresh working folder, with the in-progress ``sd`` plugin kept out of the way."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hearth.cli.main import cli


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr_lines: list[str]  # stderr without the plugin loader's "warning:" lines
    stderr: str
    exception: BaseException | None


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("warning:")]


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    # The CLI tests are about the builtin nodes: the first-party model packs have their own tests.
    monkeypatch.setenv("HEARTH_DISABLE_PLUGINS", "sd,samplers,lora,video,dit,upscale,audio")
    for name in ("HEARTH_PLUGINS", "HEARTH_CUSTOM_NODES"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path


@pytest.fixture
def comfy() -> Callable[..., Outcome]:
    """``comfy(*args)`` runs the command in-process with click's CliRunner."""

    def invoke(*args: str) -> Outcome:
        result = CliRunner().invoke(cli, list(args), prog_name="comfy")
        return Outcome(result.exit_code, result.stdout, stderr_lines(result.stderr), result.stderr, result.exception)

    return invoke


@pytest.fixture
def write_json(workdir: Path) -> Callable[[str, Any], Path]:
    def write(name: str, data: Any) -> Path:
        path = workdir / name
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    return write


def api_prompt(width: int = 4, prefix: str = "cli") -> dict[str, Any]:
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": width, "height": 3, "batch_size": 1,
                                                         "color": 0x0000FF}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}}}
