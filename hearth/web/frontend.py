"""The optional ComfyUI frontend (``pip install comfy-hearth[frontend]``): where its static files are, if installed.

The package is GPL-licensed, so Hearth never depends on it: it is looked up without importing it, and Hearth's own
UI takes ``/`` when it is absent.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

PACKAGE = "comfyui_frontend_package"
DISTRIBUTION = "comfyui-frontend-package"
HEARTH_STATIC = Path(__file__).parent / "static"


def static_folder() -> Path | None:
    """The frontend's ``static`` folder (holding ``index.html``), or ``None`` when the package is absent."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "static"
        if (folder / "index.html").is_file():
            return folder
    return None


def version() -> str | None:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
