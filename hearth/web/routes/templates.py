"""Example workflows that ComfyUI-format packs ship: GET /workflow_templates and the files themselves.

A pack's ``example_workflows/`` folder (ComfyUI's convention) holds ``NAME.json`` files; the frontend lists them
under "Custom Nodes" in its template browser and fetches ``/api/workflow_templates/<pack>/NAME.json``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response

from hearth.web.routes import error_response, get_state
from hearth.web.runtime import ServerState
from hearth.web.security import UnsafePath, safe_join

router = APIRouter()
TEMPLATE_FOLDER = "example_workflows"


def template_folders(state: ServerState) -> dict[str, Path]:
    found = {}
    for record in state.plugins.records.values():
        if record.kind != "comfyui" or record.error or not record.module:
            continue
        folder = Path(record.module) / TEMPLATE_FOLDER
        if folder.is_dir():
            found[record.name] = folder
    return found


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
