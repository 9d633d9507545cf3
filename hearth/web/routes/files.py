"""Files in and out: GET /view, POST /upload/image and /upload/mask, confined to the output, input and temp folders.

What a client names must fit the filesystem (file and folder names of at most 255 bytes of UTF-8) and images are
bounded in pixels: an upload whose header claims more is refused at once (413), so no stored file can later make a
preview, a channel view or a mask fail; a file that got into a folder some other way is answered 422, never 500.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import re
import uuid
import warnings
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from hearth.web.routes import error_response, get_state
from hearth.web.runtime import ServerState
from hearth.web.security import INLINE_MEDIA, UnsafePath, disposition, safe_join, served_file

router = APIRouter()

PREVIEW_FORMATS = {"webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG", "png": "PNG"}
PREVIEW = re.compile(r"([A-Za-z]{1,8})(?:;([0-9]{1,3}))?")
# Pillow's own default, held here so a node pack that sets PIL.Image.MAX_IMAGE_PIXELS = None (many do) cannot
# switch the server's guard off. 89.5 million pixels is an 8K x 8K image with room to spare.
MAX_IMAGE_PIXELS = 89_478_485
NAME_MAX = 255  # bytes in one file or folder name: ext4, XFS, APFS and NTFS all stop here
PATH_MAX = 1024  # bytes in a whole relative path a client may give; far below the OS's 4096


class BadField(ValueError):
    """A request field (``field``: ``filename``, ``subfolder``, ``preview`` ...) the server cannot use."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BadFileName(BadField):
    """A file or folder name the filesystem cannot hold: too long, or not valid Unicode."""


class FileConflict(Exception):
    """The path is taken by the other kind of thing: a file where a folder is needed, or a folder where a file is."""


class ImageTooLarge(Exception):
    """An image whose header claims more pixels than :data:`MAX_IMAGE_PIXELS` (a decompression bomb, maybe)."""

    def __init__(self, label: str, width: int, height: int) -> None:
        claimed = f"{width}x{height} ({width * height:,} pixels)" if width else f"{height:,} pixels"
        super().__init__(f"{label} is {claimed}; the server accepts images of at most {MAX_IMAGE_PIXELS:,} pixels "
                         f"(width x height). Resize it first.")


def check_file_name(field: str, value: str) -> None:
    """Refuse a name (``a/b/c`` allowed) the filesystem cannot hold, naming the request field it came in."""
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadFileName(field, f"{field} {ascii(value)[:80]} is not valid Unicode (it holds a lone surrogate); "
                          f"send the name as UTF-8 text.") from None
    if len(encoded) > PATH_MAX:
        raise BadFileName(field, f"{field} is {len(encoded)} bytes long; at most {PATH_MAX} bytes are accepted. "
                          f"Use a shorter name.")
    for part in value.replace("\\", "/").split("/"):
        size = len(part.encode("utf-8"))
        if size > NAME_MAX:
            raise BadFileName(field, f"{field} has a name of {size} bytes ({ascii(part)[:40]}...); a file or "
                              f"folder name may be at most {NAME_MAX} bytes. Use a shorter name.")


def checked_join(root: Path, *fields: tuple[str, str]) -> Path:
    """:func:`safe_join` of ``(field, value)`` pairs, each checked by :func:`check_file_name` first."""
    for field, value in fields:
        check_file_name(field, value)
    return safe_join(root, *(value for _, value in fields))


def folder_for(state: ServerState, kind: str) -> Path | None:
    try:
        return state.config.folders.for_type(kind or "output")
    except ValueError:
        return None


def _attachment(name: str) -> str:
    return disposition("attachment", name)


def _preview_format(preview: str) -> tuple[str, int]:
    """``webp;90`` → (``WEBP``, 90); an unknown format is WebP, as in ComfyUI; a bad quality is a BadField."""
    match = PREVIEW.fullmatch(preview)
    if match is None or not 1 <= int(match.group(2) or 90) <= 100:
        raise BadField("preview", f"preview {ascii(preview)[:60]} is not FORMAT;QUALITY; use e.g. webp;90, "
                       f"jpeg;85 or png, with a quality from 1 to 100.")
    return PREVIEW_FORMATS.get(match.group(1).lower(), "WEBP"), int(match.group(2) or 90)


@router.get("/view")
async def view(filename: str = "", subfolder: str = "", type: str = "output", preview: str | None = None,
               channel: str | None = None, state: ServerState = Depends(get_state)) -> Response:
    root = folder_for(state, type)
    if root is None:
        return error_response(400, "invalid_request", f"Unknown type {type!r}", "Use output, input or temp.")
    if not filename:
        return error_response(400, "invalid_request", "filename is required")
    try:
        fmt = _preview_format(preview) if preview else None
        path = checked_join(root, ("subfolder", subfolder), ("filename", filename))
    except UnsafePath as exc:
        return error_response(403, "forbidden_path", "Path refused", str(exc))
    except ValueError as exc:
        return error_response(400, "invalid_request", str(exc), field=getattr(exc, "field", None))
    if not path.is_file():
        return error_response(404, "not_found", f"No file {filename!r} in {type}/{subfolder}".rstrip("/"))
    if path.suffix.lower() not in INLINE_MEDIA:
        return served_file(path)
    if fmt or channel in ("rgb", "a"):
        try:
            converted = await run_in_threadpool(_convert, path, fmt, channel)
        except ImageTooLarge as exc:
            return error_response(422, "image_too_large", str(exc),
                                  "Fetch the file itself, without preview or channel.", field="filename")
        if converted is not None:
            body, media_type = converted
            return Response(body, media_type=media_type,
                            headers={"Content-Disposition": disposition("inline", path.stem)})
    return served_file(path)



def _open_image(source: Path | bytes, label: str) -> Any:
    """The image's header read (pixels not yet decoded); ``None`` if Pillow does not know the data as an image.

    Raises :class:`ImageTooLarge` before decoding anything larger than :data:`MAX_IMAGE_PIXELS`.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Image.DecompressionBombError as exc:  # Pillow stops at twice its limit; its message holds the count
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageTooLarge(label, 0, int(found.group(1)) if found else MAX_IMAGE_PIXELS * 2) from None
    except Exception:  # noqa: BLE001 - Pillow's decoders raise many kinds on hostile data; all mean "not an image"
        return None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise ImageTooLarge(label, width, height)
    return image


def check_image_upload(data: bytes, label: str) -> None:
    """Refuse an upload whose header claims too many pixels; data that is no image passes, stored as given."""
    image = _open_image(data, label)
    if image is not None:
        image.close()


def _convert(path: Path, fmt: tuple[str, int] | None, channel: str | None) -> tuple[bytes, str] | None:
    """A re-encoded preview (``WEBP``, 90) or one channel view (``rgb`` or ``a``); ``None`` if not an image."""
    from PIL import Image

    image = _open_image(path, path.name)
    if image is None:
        return None
    try:
        with image:
            image.load()
            if channel == "rgb":
                image = image.convert("RGB")
            elif channel == "a":
                alpha = image.getchannel("A") if "A" in image.getbands() else Image.new("L", image.size, 255)
                image = Image.new("RGBA", image.size)
                image.putalpha(alpha)
            elif image.mode not in ("RGB", "RGBA", "L", "LA"):  # 16-bit, CMYK, palette: what every encoder takes
                image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
            name, quality = fmt or ("PNG", 90)
            if name == "JPEG":
                image = image.convert("RGB")
            buffer = io.BytesIO()
            image.save(buffer, format=name, quality=quality)
    except Exception:  # noqa: BLE001 - decoders of hostile files raise anything; a file that fails is served as is
        return None
    return buffer.getvalue(), f"image/{name.lower()}"


def _clean_name(name: str) -> str:
    base = Path(name.replace("\\", "/")).name
    if base in ("", ".", "..") or "\x00" in base:
        raise UnsafePath(f"{name!r} is not a file name")
    return base


def _store(root: Path, subfolder: str, name: str, data: bytes, overwrite: bool) -> tuple[str, str]:
    """Write ``data``; without ``overwrite`` a different file of that name gets a ``name (1).ext`` sibling."""
    folder = checked_join(root, ("subfolder", subfolder))
    target = checked_join(folder, ("image", name))
    if not overwrite:
        stem, suffix, counter = target.stem, target.suffix, 1
        digest = hashlib.sha256(data).digest()
        while target.exists():
            if target.is_file() and hashlib.sha256(target.read_bytes()).digest() == digest:
                break  # the same image uploaded again keeps its name, as ComfyUI does
            target = folder / f"{stem} ({counter}){suffix}"
            check_file_name("image", target.name)  # the counter may push a name just under the limit over it
            counter += 1
    if target.is_dir():
        raise FileConflict(f"{name!r} is a folder in {subfolder or 'the folder'}; upload under another name.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise FileConflict(f"subfolder {subfolder!r} is (or runs through) a file, not a folder; "
                           f"choose another subfolder.") from None
    # A short temporary name: a name at the length limit must not overflow it when a suffix is added.
    tmp = folder / f".upload-{uuid.uuid4().hex[:16]}.part"
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
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
        check_file_name("image", name)
        check_file_name("subfolder", subfolder)
        await run_in_threadpool(check_image_upload, data, f"image {name!r}")
        if mask:
            original = _original(state, form.get("original_ref"))
            try:
                data = await run_in_threadpool(_apply_mask, original, data)
            except ImageTooLarge as exc:  # the mask passed above: it is the stored original, not this request
                return error_response(422, "image_too_large", str(exc), "Mask a smaller image.",
                                      field="original_ref")
        stored, subfolder = await run_in_threadpool(_store, root, subfolder, name, data, overwrite)
    except ImageTooLarge as exc:
        return error_response(413, "image_too_large", str(exc), field="image")
    except UnsafePath as exc:
        return error_response(403, "forbidden_path", "Path refused", str(exc))
    except FileConflict as exc:
        return error_response(409, "conflict", str(exc))
    except LookupError as exc:
        return error_response(404, "not_found", str(exc))
    except ValueError as exc:
        return error_response(400, "invalid_request", str(exc), field=getattr(exc, "field", None))
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:  # a folder path longer than this filesystem takes, limits above passed
            return error_response(400, "invalid_request", "The file's path is too long for the server's disk.",
                                  "Use a shorter subfolder or name.")
        raise
    return JSONResponse({"name": stored, "subfolder": subfolder, "type": kind})


def _original(state: ServerState, ref: Any) -> Path:
    try:
        info = json.loads(str(ref)) if ref is not None else None
    except (json.JSONDecodeError, RecursionError):
        info = None
    if not isinstance(info, dict) or not info.get("filename"):
        raise ValueError("original_ref must be JSON {filename, subfolder, type} naming the masked image")
    root = folder_for(state, str(info.get("type") or "input"))
    if root is None:
        raise ValueError(f"original_ref has an unknown type {ascii(info.get('type'))[:60]}")
    filename, subfolder = str(info["filename"]), str(info.get("subfolder") or "")
    path = checked_join(root, ("original_ref subfolder", subfolder), ("original_ref filename", filename))
    if not path.is_file():
        raise LookupError(f"original image {ascii(filename)[:80]} not found")
    return path


def _apply_mask(original: Path, mask_bytes: bytes) -> bytes:
    """The original image with the uploaded mask's alpha as its alpha channel, as PNG."""
    mask = _open_image(mask_bytes, "the mask")
    image = _open_image(original, f"original image {original.name!r}")
    if mask is None or image is None:
        raise ValueError("the mask and the original must both be images Pillow can read")
    try:
        with mask, image:
            alpha = mask.getchannel("A") if "A" in mask.getbands() else mask.convert("L")
            result = image.convert("RGBA")
            result.putalpha(alpha.resize(result.size))
            buffer = io.BytesIO()
            result.save(buffer, format="PNG", compress_level=4)
    except Exception as exc:  # noqa: BLE001 - as in _convert: whatever a decoder raises on hostile data
        raise ValueError(f"could not apply the mask: {type(exc).__name__}: {exc}") from None
    return buffer.getvalue()


@router.post("/upload/image")
async def upload_image(request: Request, state: ServerState = Depends(get_state)) -> Response:
    return await _upload(request, state, mask=False)


@router.post("/upload/mask")
async def upload_mask(request: Request, state: ServerState = Depends(get_state)) -> Response:
    return await _upload(request, state, mask=True)
