"""The ``hearth.default`` entry point of the ComfyUI compatibility plugin: it loads the custom-node folders.

A default-tier plugin (pytest's tiers): installed packs win a node-name clash with it. Imported when plugins
load, so it imports nothing heavy; the ComfyUI modules are served only once a pack is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.core.hookspecs import hookimpl


@hookimpl
def custom_nodes_for_folders(folders: list[Path], wanted: Callable[[str], bool], plugins: Any) -> Any:
    from hearth_comfy_compat.loader import CustomNodesLoader

    loader = CustomNodesLoader(folders, wanted=wanted)
    loader.load(plugins)
    return loader

