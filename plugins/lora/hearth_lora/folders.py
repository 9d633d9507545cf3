"""Where LoRA files are: the ``loras`` model folder, through ``hearth.core.model_folders``' process-wide folders."""

from __future__ import annotations

from pathlib import Path

from hearth.core.model_folders import model_folders

KIND = "loras"


def lora_files() -> list[str]:
    """Names for the ``lora_name`` combo: relative to their folder, ``/``-separated, sorted."""
    return model_folders().list(KIND)


def lora_path(name: str) -> Path:
    """The file a ``lora_name`` means; raises ``ModelFileNotFound`` naming the folders searched."""
    return model_folders().find(KIND, name)
