"""Files in and out: GET /view, POST /upload/image and /upload/mask, confined to the output, input and temp folders."""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile

from hearth.web.routes import error_response, get_state
from hearth.web.runtime import ServerState
from hearth.web.security import UnsafePath, safe_join

router = APIRouter()

# Served as downloads, never rendered: a saved .html or .svg must not run script in this origin.
ACTIVE_SUFFIXES = {".html", ".htm", ".xhtml", ".js", ".mjs", ".css", ".svg", ".svgz", ".xml", ".xsl", ".php"}
PREVIEW_FORMATS = {"webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG", "png": "PNG"}
# Output media types that must not depend on the system's mime.types (a slim container has no .webp entry there,
# and nosniff then stops browsers from showing the file).
MEDIA_TYPES = {".webp": "image/webp", ".webm": "video/webm", ".mp4": "video/mp4", ".mkv": "video/x-matroska",
               ".mov": "video/quicktime", ".apng": "image/apng"}


def folder_for(state: ServerState, kind: str) -> Path | None:
    try:
        return state.config.folders.for_type(kind or "output")
    except ValueError:
        return None


def _attachment(name: str) -> str:
    from urllib.parse import quote

    return f"attachment; filename*=UTF-8''{quote(name)}"


@router.get("/view")
async def view(filename: str = "", subfolder: str = "", type: str = "output", preview: str | None = None,
               channel: str | None = None, state: ServerState = Depends(get_state)) -> Response:
    root = folder_for(state, type)
    if root is None:
        return error_response(400, "invalid_request", f"Unknown type {type!r}", "Use output, input or temp.")
    if not filename:
        return error_response(400, "invalid_request", "filename is required")
    try:
        path = safe_join(root, subfolder, filename)
    except UnsafePath as exc:
        return error_response(403, "forbidden_path", "Path refused", str(exc))
    if not path.is_file():
        return error_response(404, "not_found", f"No file {filename!r} in {type}/{subfolder}".rstrip("/"))
    if path.suffix.lower() in ACTIVE_SUFFIXES:
        return FileResponse(path, media_type="application/octet-stream",
                            headers={"Content-Disposition": _attachment(path.name),
                                     "X-Content-Type-Options": "nosniff"})
    if preview or channel in ("rgb", "a"):
        converted = await run_in_threadpool(_convert, path, preview, channel)
        if converted is not None:
            body, media_type = converted
            return Response(body, media_type=media_type,
                            headers={"Content-Disposition": f'inline; filename="{path.stem}"'})
    media_type = MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, content_disposition_type="inline", filename=path.name,
                        headers={"X-Content-Type-Options": "nosniff"})


def _convert(path: Path, preview: str | None, channel: str | None) -> tuple[bytes, str] | None:
    """A re-encoded preview (``webp;90``) or one channel view (``rgb`` or ``a``); ``None`` if not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError):
        return None
    if channel == "rgb":
        image = image.convert("RGB")
    elif channel == "a":
        alpha = image.getchannel("A") if "A" in image.getbands() else Image.new("L", image.size, 255)
        image = Image.new("RGBA", image.size)
        image.putalpha(alpha)
    fmt, quality = "PNG", 90
    if preview:
        name, _, q = preview.partition(";")
        fmt = PREVIEW_FORMATS.get(name.lower(), "WEBP")
        quality = int(q) if q.isdigit() else 90
    if fmt == "JPEG":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=quality)
    return buffer.getvalue(), f"image/{fmt.lower()}"


def _clean_name(name: str) -> str:
    base = Path(name.replace("\\", "/")).name
    if base in ("", ".", "..") or "\x00" in base:
        raise UnsafePath(f"{name!r} is not a file name")
    return base


def _store(root: Path, subfolder: str, name: str, data: bytes, overwrite: bool) -> tuple[str, str]:
    """Write ``data``; without ``overwrite`` a different file of that name gets a ``name (1).ext`` sibling."""
    folder = safe_join(root, subfolder)
    target = safe_join(folder, name)
    if not overwrite:
        stem, suffix, counter = target.stem, target.suffix, 1
        digest = hashlib.sha256(data).digest()
        while target.exists():
            if target.is_file() and hashlib.sha256(target.read_bytes()).digest() == digest:
                break  # the same image uploaded again keeps its name, as ComfyUI does
            target = folder / f"{stem} ({counter}){suffix}"
            counter += 1
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target.name, subfolder


async def _upload(request: Request, state: ServerState, mask: bool) -> Response:
    try:
        form = await request.form()
    except Exception as exc:  # malformed multipart: the client's fault, not the server's
        return error_response(400, "invalid_request", "Expected a multipart form with an 'image' file.", str(exc))
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        return error_response(400, "invalid_request", "Expected a multipart form with an 'image' file.")
    kind = str(form.get("type") or "input")
    root = folder_for(state, kind)
    if root is None:
        return error_response(400, "invalid_request", f"Unknown type {kind!r}", "Use input, temp or output.")
    subfolder = str(form.get("subfolder") or "")
    overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
    data = await upload.read()
    try:
        name = _clean_name(upload.filename or "")
        if mask:
            original = _original(state, form.get("original_ref"))
            data = await run_in_threadpool(_apply_mask, original, data)
        stored, subfolder = await run_in_threadpool(_store, root, subfolder, name, data, overwrite)
    except UnsafePath as exc:
        return error_response(403, "forbidden_path", "Path refused", str(exc))
    except LookupError as exc:
        return error_response(404, "not_found", str(exc))
    except ValueError as exc:
        return error_response(400, "invalid_request", str(exc))
    return JSONResponse({"name": stored, "subfolder": subfolder, "type": kind})


def _original(state: ServerState, ref: Any) -> Path:
    try:
        info = json.loads(str(ref)) if ref is not None else None
    except json.JSONDecodeError:
        info = None
    if not isinstance(info, dict) or not info.get("filename"):
        raise ValueError("original_ref must be JSON {filename, subfolder, type} naming the masked image")
    root = folder_for(state, str(info.get("type") or "input"))
    if root is None:
        raise ValueError(f"original_ref has an unknown type {info.get('type')!r}")
    path = safe_join(root, str(info.get("subfolder") or ""), str(info["filename"]))
    if not path.is_file():
        raise LookupError(f"original image {info['filename']!r} not found")
    return path


def _apply_mask(original: Path, mask_bytes: bytes) -> bytes:
    """The original image with the uploaded mask's alpha as its alpha channel, as PNG."""
    from PIL import Image, UnidentifiedImageError

    try:
        mask = Image.open(io.BytesIO(mask_bytes))
        image = Image.open(original).convert("RGBA")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not an image: {exc}") from None
    alpha = mask.getchannel("A") if "A" in mask.getbands() else mask.convert("L")
    image.putalpha(alpha.resize(image.size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=4)
    return buffer.getvalue()


@router.post("/upload/image")
async def upload_image(request: Request, state: ServerState = Depends(get_state)) -> Response:
    return await _upload(request, state, mask=False)


@router.post("/upload/mask")
async def upload_mask(request: Request, state: ServerState = Depends(get_state)) -> Response:
    return await _upload(request, state, mask=True)
