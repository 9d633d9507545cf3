"""What the official frontend reads beside the main API, as ComfyUI serves it.

- ``/internal/folder_paths``: each model folder kind with its directories (ComfyUI's ``folder_names_and_paths``).
- ``/internal/files/{input|output|temp}``: the file names at the top of that folder, newest first (the "input
  assets" panel); hidden files and links that lead out of the folder are left out.
- ``/internal/logs``, ``/internal/logs/raw``, ``PATCH /internal/logs/subscribe``: the server's recent log lines
  (the frontend's logs panel).
- ``/view_metadata/{kind}?filename=NAME.safetensors``: a model file's ``__metadata__`` header (what the model
  library shows), read without loading the file.
- ``/experiment/models/preview/{kind}/{path_index}/{filename}``: a model's preview image (``NAME.png`` beside
  ``NAME.safetensors``, ``NAME.preview.png``, or a cover image in its safetensors metadata) as WebP.

Every name a client gives stays inside the folder it names: ``..``, absolute paths and links that lead elsewhere
are refused, not followed.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import struct
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from hearth.core.model_folders import ModelFolders, UnknownFolderKind
from hearth.web.routes import error_response, get_state, json_body
from hearth.web.routes.files import ImageTooLarge, _open_image, folder_for
from hearth.web.runtime import LogBuffer, ServerState
from hearth.web.security import UnsafePath, safe_join

router = APIRouter()

HEADER_MAX = 1024 * 1024  # ComfyUI reads a safetensors header of at most 1 MiB for /view_metadata
PREVIEW_HEADER_MAX = 8 * 1024 * 1024  # and at most 8 MiB when looking for cover images
PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".avif")


# -- logs ------------------------------------------------------------------------------------------------------


@router.get("/internal/logs")
async def logs() -> Any:
    return "".join(f"{entry['t']} - {entry['m']}" for entry in list(LogBuffer.install().entries))


@router.get("/internal/logs/raw")
async def logs_raw() -> dict[str, Any]:
    size = os.get_terminal_size() if os.isatty(1) else os.terminal_size((80, 24))
    return {"entries": list(LogBuffer.install().entries), "size": {"cols": size.columns, "rows": size.lines}}


@router.patch("/internal/logs/subscribe")
async def logs_subscribe(request: Request) -> Response:
    await json_body(request, default={})  # new lines are not pushed over the socket: the panel polls /logs/raw
    return Response(status_code=200)


# -- folders ---------------------------------------------------------------------------------------------------


def model_folders(state: ServerState) -> ModelFolders:
    return state.runtime.model_folders


@router.get("/internal/folder_paths")
async def folder_paths(state: ServerState = Depends(get_state)) -> dict[str, list[str]]:
    return model_folders(state).describe()


def _inside(root: Path, path: Path) -> bool:
    try:
        target = path.resolve()
    except OSError:
        return False
    base = root.resolve()
    return target == base or base in target.parents


def list_files(folder: Path) -> list[str]:
    """Visible regular files at the top of ``folder``, newest first (links out of it left out)."""
    if not folder.is_dir():
        return []
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if not entry.is_file() or (entry.is_symlink() and not _inside(folder, Path(entry.path))):
                    continue
                found.append((entry.stat().st_mtime, entry.name))
            except OSError:
                continue
    found.sort(key=lambda item: -item[0])
    return [name for _, name in found]


@router.get("/internal/files/{directory_type}")
async def files(directory_type: str, state: ServerState = Depends(get_state)) -> Response:
    folder = folder_for(state, directory_type) if directory_type in ("input", "output", "temp") else None
    if folder is None:
        return error_response(400, "invalid_request", f"Invalid directory type {directory_type!r}",
                              "Use input, output or temp.", field="directory_type")
    return JSONResponse(await run_in_threadpool(list_files, folder))


# -- model files -----------------------------------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind

    def response(self) -> Response:
        return error_response(self.status, self.kind, str(self))


def _roots(state: ServerState, kind: str) -> list[Path]:
    try:
        return model_folders(state).folders(kind)
    except UnknownFolderKind:
        raise Refused(404, "not_found", f"No model folder {kind!r}") from None


def _model_file(root: Path, filename: str) -> Path:
    """``root / filename`` if it stays inside ``root`` once links are followed; :class:`Refused` otherwise."""
    if not filename or "\x00" in filename:
        raise Refused(400, "invalid_request", "filename is required")
    try:
        return safe_join(root, filename)
    except UnsafePath as exc:
        raise Refused(403, "forbidden_path", f"Path refused: {exc}") from None


def safetensors_header(path: Path, max_size: int) -> dict[str, Any] | None:
    """The JSON header of a safetensors file, or ``None`` when it is not one or its header is over ``max_size``."""
    try:
        with open(path, "rb") as handle:
            size_bytes = handle.read(8)
            if len(size_bytes) < 8:
                return None
            (size,) = struct.unpack("<Q", size_bytes)
            if size > max_size:
                return None
            header = json.loads(handle.read(size))
    except (OSError, ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def find_model(state: ServerState, kind: str, filename: str) -> Path | None:
    """The first folder's file of that name (as ComfyUI's ``get_full_path``), confined to its folder."""
    for root in _roots(state, kind):
        path = _model_file(root, filename)
        if path.is_file():
            return path
    return None


@router.get("/view_metadata/{folder_name}")
async def view_metadata(folder_name: str, filename: str = "", state: ServerState = Depends(get_state)) -> Response:
    try:
        if not filename.endswith(".safetensors"):
            raise Refused(404, "not_found", "Only .safetensors files carry metadata")
        path = find_model(state, folder_name, filename)
        if path is None:
            raise Refused(404, "not_found", f"No {folder_name} file {filename!r}")
        header = await run_in_threadpool(safetensors_header, path, HEADER_MAX)
        metadata = header.get("__metadata__") if header else None
        if not isinstance(metadata, dict):
            raise Refused(404, "not_found", f"{filename!r} has no metadata")
    except Refused as exc:
        return exc.response()
    return JSONResponse(metadata)


def model_previews(path: Path) -> list[Path | bytes]:
    """A model's preview images: ``NAME.<image>``, then ``NAME.preview.<image>``, then its safetensors cover images."""
    found: list[Path | bytes] = []
    base = path.with_suffix("").name
    for name in [base + s for s in PREVIEW_SUFFIXES] + [base + ".preview" + s for s in PREVIEW_SUFFIXES]:
        candidate = path.parent / name
        if candidate.is_file() and _inside(path.parent, candidate):
            found.append(candidate)
    model = path.parent / (base + ".safetensors")
    header = safetensors_header(model, PREVIEW_HEADER_MAX) if model.is_file() else None
    covers = (header or {}).get("__metadata__", {})
    covers = covers.get("ssmd_cover_images") if isinstance(covers, dict) else None
    try:
        images = json.loads(covers) if isinstance(covers, str) else []
    except ValueError:
        images = []
    for image in images if isinstance(images, list) else []:
        try:
            found.append(base64.b64decode(str(image), validate=False))
        except (binascii.Error, ValueError):
            continue
    return found


def _as_webp(source: Path | bytes) -> bytes | None:
    try:
        image = _open_image(source, "the preview")
    except ImageTooLarge:
        return None
    if image is None:
        return None
    try:
        with image:
            buffer = io.BytesIO()
            image.save(buffer, format="WEBP")
    except Exception:  # noqa: BLE001 - a broken preview is answered 404, as in ComfyUI
        return None
    return buffer.getvalue()


@router.get("/experiment/models/preview/{folder}/{path_index}/{filename:path}")
async def model_preview(folder: str, path_index: str, filename: str,
                        state: ServerState = Depends(get_state)) -> Response:
    try:
        roots = _roots(state, folder)
        if not path_index.isdigit() or int(path_index) >= len(roots):
            raise Refused(404, "not_found", f"{folder} has no folder number {path_index!r}")
        root = roots[int(path_index)]
        path = _model_file(root, filename)
    except Refused as exc:
        return exc.response()

    def render() -> bytes | None:
        for preview in model_previews(path) if path.parent.is_dir() else []:
            body = _as_webp(preview)
            if body is not None:
                return body
        return None

    body = await run_in_threadpool(render)
    if body is None:
        return error_response(404, "not_found", f"No preview for {filename!r}")
    return Response(body, media_type="image/webp")
