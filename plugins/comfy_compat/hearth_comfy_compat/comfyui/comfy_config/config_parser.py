"""ComfyUI's ``comfy_config.config_parser``: read a pack's ``pyproject.toml`` (the registry's manifest format)."""

from __future__ import annotations

import os
import tomllib

from hearth_comfy_compat.comfyui.comfy_config.types import PyProjectConfig, from_toml


def extract_node_configuration(path: str | os.PathLike[str]) -> PyProjectConfig | None:
    """The pack's settings from ``<path>/pyproject.toml`` (``path`` may name the file itself); None when there is
    no such file or it is not valid TOML."""
    file = os.path.join(path, "pyproject.toml") if os.path.isdir(path) else os.fspath(path)
    try:
        with open(file, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return from_toml(data)
