"""Workflow templates: the template browser's ``/templates/...`` and packs' example workflows.

``/templates/index.json``, ``/templates/index_logo.json``, the template files and their thumbnails come from the
``comfyui-workflow-templates`` packages when installed (the JSON package holds the indexes and workflows, the media
packages the thumbnails; each keeps its files in a ``templates/`` folder), as ComfyUI serves them; with none
installed every ``/templates/...`` is a 404, as in ComfyUI, and the frontend shows no built-in templates.

A pack's ``example_workflows/`` folder (ComfyUI's convention; ``example``, ``examples``, ``workflow`` and
``workflows`` also count) holds ``NAME.json`` files; the frontend lists them under "Custom Nodes" in its template
browser (``GET /workflow_templates``) and fetches ``/api/workflow_templates/<pack>/NAME.json``.
"""

from __future__ import annotations

import functools
import importlib.util
import mimetypes
import pkgutil
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response

from hearth.web.routes import error_response, get_state
from hearth.web.runtime import ServerState
from hearth.web.security import UnsafePath, safe_join

router = APIRouter()
TEMPLATE_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")  # ComfyUI's order
TEMPLATE_PACKAGES = "comfyui_workflow_templates"  # the prefix of every templates package's module
MEDIA_TYPES = {".json": "application/json", ".webp": "image/webp", ".png": "image/png", ".jpg": "image/jpeg",
               ".jpeg": "image/jpeg", ".svg": "image/svg+xml", ".mp4": "video/mp4", ".webm": "video/webm",
               ".mp3": "audio/mpeg", ".flac": "audio/flac", ".wav": "audio/wav", ".glb": "model/gltf-binary"}


def template_folders(state: ServerState) -> dict[str, Path]:
    found = {}
    for record in state.plugins.records.values():
        if record.kind != "comfyui" or record.error or not record.module:
            continue
        for name in TEMPLATE_FOLDERS:
            folder = Path(record.module) / name
            if folder.is_dir():
                found[record.name] = folder
                break
    return found


@functools.cache
def package_template_roots() -> tuple[Path, ...]:
    """The ``templates/`` folders of the installed templates packages (found, never imported): the JSON package
    (indexes and workflows) first, then the rest (media) by name."""
    names = sorted((m.name for m in pkgutil.iter_modules() if m.name.startswith(TEMPLATE_PACKAGES)),
                   key=lambda n: (not n.endswith("_json"), n))
    roots = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            folder = Path(location) / "templates"
            if folder.is_dir():
                roots.append(folder)
    return tuple(roots)


@router.get("/templates/{path:path}")
async def template_file(path: str) -> Response:
    for root in package_template_roots():
        try:
            target = safe_join(root, path)
        except UnsafePath as exc:
            return error_response(403, "forbidden_path", "Path refused", str(exc))
        if target.is_file():
            suffix = target.suffix.lower()
            media_type = MEDIA_TYPES.get(suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            return FileResponse(target, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})
    return error_response(404, "not_found", f"No template file {path!r}",
                          "Install comfyui-workflow-templates for the built-in templates.")


@router.get("/workflow_templates")
async def workflow_templates(state: ServerState = Depends(get_state)) -> dict[str, list[str]]:
    return {pack: sorted(p.stem for p in folder.glob("*.json"))
            for pack, folder in sorted(template_folders(state).items())}


@router.get("/workflow_templates/{pack}/{name}")
async def workflow_template(pack: str, name: str, state: ServerState = Depends(get_state)) -> Response:
    folder = template_folders(state).get(pack)
    if folder is None:
        return error_response(404, "not_found", f"Pack {pack!r} ships no example workflows")
    try:
        path = safe_join(folder, name)
    except UnsafePath as exc:
        return error_response(403, "forbidden_path", "Path refused", str(exc))
    if not path.is_file():
        return error_response(404, "not_found", f"No example workflow {name!r} in {pack}")
    return FileResponse(path, media_type="application/json" if path.suffix == ".json" else None)
