"""Helpers for the SD plugin's workflow tests: a Runtime with tiny models, API-format prompts, and the image a
PreviewImage node showed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hearth.core.context import Folders
from hearth.core.executor import Executor
from hearth.core.model_folders import write_tiny_models
from hearth.core.runtime import Runtime


def tiny_runtime(work: Path, tiny: Iterable[str]) -> Runtime:
    """A Runtime whose models, output, input and temp folders lie under ``work``, with the named tiny models
    (``register_tiny_models`` names) written to its models folder."""
    built = Runtime.build(models_dir=work / "models", environ={}, output=work / "output", input=work / "input",
                          temp=work / "temp")
    offered = built.plugins.resolve_named("register_tiny_models", "tiny model")
    write_tiny_models(work / "models", {name: offered[name] for name in tiny})
    return built


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    """One node of an API-format prompt."""
    return {"class_type": class_type, "inputs": inputs}


def executor_for(runtime: Runtime, tmp_path: Path) -> Executor:
    """An executor with ``runtime``'s nodes and plugins, writing below ``tmp_path``."""
    folders = Folders(tmp_path / "output", tmp_path / "input", tmp_path / "temp")
    return Executor(runtime.plugins.nodes(), folders=folders, plugins=runtime.plugins)


def preview_pixels(executor: Executor, prompt: dict[str, Any], preview: str) -> np.ndarray:
    """Run ``prompt``, failing the test with the executor's error, and return the RGB pixels ``[H, W, 3]`` that its
    PreviewImage node ``preview`` wrote."""
    result = executor.run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    info = result.outputs[preview]["images"][0]
    with Image.open(executor.folders.temp / info["subfolder"] / info["filename"]) as opened:
        return np.asarray(opened.convert("RGB"))
