"""Node documentation: ``/docs/{Node}/{lang}.md`` (and the images those pages use) from ``comfyui-embedded-docs``.

ComfyUI serves the package's ``docs/`` folder at ``/docs`` when it is installed; the frontend's node help panel
fetches ``/docs/KSampler/en.md`` and falls back to the node's own description on a 404, which is every answer
here when the package is absent. The package is found, never imported.
"""

from __future__ import annotations

import functools
import importlib.util
import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from hearth.web.routes import error_response
from hearth.web.security import UnsafePath, safe_join

router = APIRouter()
PACKAGE = "comfyui_embedded_docs"
MEDIA_TYPES = {".md": "text/markdown; charset=utf-8", ".png": "image/png", ".jpg": "image/jpeg",
               ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif", ".svg": "image/svg+xml",
               ".mp4": "video/mp4", ".webm": "video/webm", ".json": "application/json"}


@functools.cache
def docs_root() -> Path | None:
    """The package's ``docs`` folder, or ``None`` when it is not installed."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "docs"
        if folder.is_dir():
            return folder
    return None


@router.get("/docs/{path:path}")
async def doc_file(path: str) -> Response:
    root = docs_root()
    if root is None:
        return error_response(404, "not_found", "No node documentation installed",
                              "Install comfyui-embedded-docs for the node help pages.")
    try:
        target = safe_join(root, path)
    except UnsafePath as exc:
        return error_response(403, "forbidden_path", "Path refused", str(exc))
    if not target.is_file():
        return error_response(404, "not_found", f"No document {path!r}")
    suffix = target.suffix.lower()
    media_type = MEDIA_TYPES.get(suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return FileResponse(target, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})
