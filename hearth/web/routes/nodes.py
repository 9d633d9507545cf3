"""What is installed: /object_info, /embeddings, /extensions, /models, /i18n, /features and /system_stats."""

from __future__ import annotations

import os
import platform
import sys
import threading
from importlib import metadata
from typing import Any

import psutil
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from hearth.core.model_folders import ModelFolders
from hearth.web import frontend
from hearth.web.boundary import SafeJSONResponse
from hearth.web.comfyui_modules import reported_module
from hearth.web.routes import get_state
from hearth.web.runtime import ServerState, memory_manager

router = APIRouter()

# The API level Hearth matches; ComfyUI clients read this field to decide which features to use.
COMFYUI_API_VERSION = "0.3.64"


def hearth_version() -> str:
    try:
        return metadata.version("comfy-hearth")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def server_features(state: ServerState) -> dict[str, Any]:
    """What ``/features`` and the WebSocket's ``feature_flags`` answer."""
    return {"supports_preview_metadata": True, "max_upload_size": state.config.max_upload_bytes}


def as_comfyui(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with the ``python_module`` ComfyUI reports for its own nodes: its frontend badges a node as core
    only when the module's package is ``nodes``/``comfy_extras``/``comfy_api_nodes`` (``comfy nodes --json``
    keeps Hearth's implementing module)."""
    module = reported_module(name, entry.get("python_module"))
    return entry if module == entry.get("python_module") else {**entry, "python_module": module}


_catalogue_lock = threading.Lock()  # today's model lists are put into the shared entries in place


def _from_catalogue(state: ServerState, node_class: str | None) -> dict[str, Any] | None:
    """Every entry (or ``node_class``'s) from the catalogue, with the model lists of this moment; ``None`` when a
    dynamic node's class cannot be had without its pack's import."""
    catalogue = state.catalogue
    assert catalogue is not None
    with _catalogue_lock:
        catalogue.refresh_lists(state.runtime.model_folders)
        if node_class is None:
            return catalogue.object_info(state.runtime, broken=False)
        return catalogue.node_info(node_class, state.runtime)


@router.get("/object_info")
async def object_info(state: ServerState = Depends(get_state)) -> Response:
    # Computed per request: input lists (LoadImage's files) change while the server runs. Encoded here, not by
    # FastAPI: its encoder walks the ~300 entries three times slower than json does, and this is the answer the
    # frontend waits for at start.
    info = None
    if not state.is_loaded() and state.catalogue is not None:
        info = await run_in_threadpool(_from_catalogue, state, None)
    if info is None:  # loaded; or a dynamic node of the catalogue only its pack's import can read again
        await state.wait_loaded()
        info = await run_in_threadpool(state.registry.object_info)
    return SafeJSONResponse({name: as_comfyui(name, entry) for name, entry in info.items()})


@router.get("/object_info/{node_class}")
async def object_info_one(node_class: str, state: ServerState = Depends(get_state)) -> dict[str, Any]:
    if not state.is_loaded() and state.catalogue is not None:
        if node_class not in state.catalogue.nodes:
            return {}
        entry = await run_in_threadpool(_from_catalogue, state, node_class)
        if entry is not None and "error" not in entry:
            return {node_class: as_comfyui(node_class, entry)}
    await state.wait_loaded()
    definition = state.registry.get(node_class)
    if definition is None:
        return {}
    return {node_class: as_comfyui(node_class, await run_in_threadpool(definition.object_info))}


def folders_of(state: ServerState) -> ModelFolders:
    """The server Runtime's model folders (``--models-dir``, ``--extra-model-paths-config``)."""
    return state.runtime.model_folders


def _not_found(folder: str) -> JSONResponse:
    return JSONResponse({"error": {"type": "not_found", "message": f"No model folder {folder!r}", "details": "",
                                   "extra_info": {}}}, status_code=404)


@router.get("/models")
async def models(state: ServerState = Depends(get_state)) -> list[str]:
    return folders_of(state).kinds()


@router.get("/models/{folder}")
async def models_in(folder: str, state: ServerState = Depends(get_state)) -> Any:
    folders = folders_of(state)
    if folder not in folders.kinds():
        return _not_found(folder)
    return await run_in_threadpool(folders.list, folder)


@router.get("/experiment/models")
async def experiment_models(state: ServerState = Depends(get_state)) -> list[dict[str, Any]]:
    """The frontend's model library: each folder kind with the paths it is read from."""
    return [{"name": kind, "folders": paths} for kind, paths in folders_of(state).describe().items()]


@router.get("/experiment/models/{folder}")
async def experiment_models_in(folder: str, state: ServerState = Depends(get_state)) -> Any:
    folders = folders_of(state)
    if folder not in folders.kinds():
        return _not_found(folder)

    def describe() -> list[dict[str, Any]]:
        roots = folders.folders(folder)
        found = []
        for name in folders.list(folder):
            index, path = next((i, root / name) for i, root in enumerate(roots) if (root / name).is_file())
            info = path.stat()
            found.append({"name": name, "pathIndex": index, "modified": info.st_mtime, "size": info.st_size})
        return found

    return await run_in_threadpool(describe)


@router.get("/embeddings")
async def embeddings(state: ServerState = Depends(get_state)) -> list[str]:
    files = await run_in_threadpool(folders_of(state).list, "embeddings")
    return [name.rsplit(".", 1)[0] for name in files]


@router.get("/extensions")
async def extensions(state: ServerState = Depends(get_state)) -> list[str]:
    urls = []
    for pack, folder in sorted(state.web_directories().items()):
        if folder.is_dir():
            urls += [f"/extensions/{pack}/{p.relative_to(folder).as_posix()}" for p in sorted(folder.rglob("*.js"))]
    return urls


@router.get("/i18n")
async def i18n() -> dict[str, Any]:
    return {}  # no pack translations yet; the frontend merges this over its own


@router.get("/features")
async def features(state: ServerState = Depends(get_state)) -> dict[str, Any]:
    return server_features(state)


def torch_version() -> str:
    """torch's version, read from its metadata until something imported it (importing it takes seconds)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return str(getattr(torch, "__version__", ""))
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return ""


def _system_stats(state: ServerState, argv: list[str]) -> dict[str, Any]:
    memory = psutil.virtual_memory()
    # While the plugins load, the devices are the machine's: making the model manager would import torch first.
    loaded = state.is_loaded() or state.runtime.has_manager()
    manager = memory_manager(state.runtime) if loaded else None
    if manager is not None:
        devices = manager.system_stats_devices()
    else:  # hearth.core.models unavailable, or the plugins still loading: report the machine as one CPU device
        devices = [{"name": "cpu", "type": "cpu", "index": 0, "vram_total": memory.total,
                    "vram_free": memory.available, "torch_vram_total": memory.total,
                    "torch_vram_free": memory.available}]
    return {
        "system": {"os": os.name, "ram_total": memory.total, "ram_free": memory.available,
                   "comfyui_version": COMFYUI_API_VERSION, "hearth_version": hearth_version(),
                   "python_version": sys.version, "pytorch_version": torch_version(), "embedded_python": False,
                   "argv": argv, "required_frontend_version": frontend.version() or "",
                   "platform": platform.platform()},
        "devices": devices,
        # Hearth's own (ComfyUI clients ignore unknown keys): each loaded model held wider than its file stores.
        "hearth": {"dtype_policy": manager.dtype_policy() if manager is not None else []},
    }


@router.get("/system_stats")
async def system_stats(request: Request, state: ServerState = Depends(get_state)) -> dict[str, Any]:
    # The first call after loading may make the model manager (seconds); a thread keeps the loop serving meanwhile.
    return await run_in_threadpool(_system_stats, state, redact_argv(sys.argv))


def redact_argv(argv: list[str]) -> list[str]:
    """The command line without the token's value: /system_stats must not hand out the credential."""
    out, hide = [], False
    for arg in argv:
        if hide:
            out.append("***")
            hide = False
        elif arg == "--token":
            out.append(arg)
            hide = True
        elif arg.startswith("--token="):
            out.append("--token=***")
        else:
            out.append(arg)
    return out
