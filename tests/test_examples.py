"""Every example workflow runs through `comfy run` and writes the files it says it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import cli

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "workflows").glob("*.json"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("workflow", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(workflow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", str(workflow), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    paths = [Path(line) for line in result.stdout.splitlines() if line.strip()]
    assert paths and all(p.is_file() for p in paths)
    with Image.open(paths[0]) as image:
        assert json.loads(image.text["prompt"])
        if "_ui" in workflow.name:
            assert json.loads(image.text["workflow"])["nodes"]
