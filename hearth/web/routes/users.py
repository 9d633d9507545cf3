"""The single user's state: /users, /settings, /userdata (saved workflows and the like) and /global_subgraphs.

Hearth runs single-user, as ComfyUI does by default: everything lives under ``<data>/user/default``. File names
arrive URL-encoded in one path segment (``/userdata/workflows%2Fa.json``), so the raw path is split before
decoding; otherwise ``.../move/...`` could not be told from a file in a folder called ``move``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from hearth.web.boundary import check_value, identifier, relative_path
from hearth.web.routes import BadRequest, error_response, get_state, json_body
from hearth.web.runtime import ServerState
from hearth.web.security import UnsafePath, safe_join, served_file

router = APIRouter()
log = logging.getLogger("hearth.web")
SETTINGS_FILE = "comfy.settings.json"


@router.get("/users")
async def users() -> dict[str, Any]:
    return {"storage": "server", "migrated": True}  # no "users" key: the frontend skips its login screen


@router.post("/users")
async def create_user() -> Response:
    return error_response(400, "invalid_request", "Hearth runs single-user; there are no accounts to create.")


# -- settings --------------------------------------------------------------------------------------------------


def _settings_path(state: ServerState) -> Path:
    return state.config.user_dir / SETTINGS_FILE


def read_settings(state: ServerState) -> dict[str, Any]:
    path = _settings_path(state)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return {}  # none yet, or a folder where the file belongs (made by an older version): the defaults
    except (ValueError, RecursionError):
        return {}  # a hand-broken file must not lock the user out of the UI; the next save rewrites it
    if not isinstance(data, dict):
        return {}
    # A file written by hand or by an older version may hold what the boundary refuses (NaN, a lone surrogate):
    # such a setting is dropped, so /settings always answers.
    kept = {}
    for key, value in data.items():
        try:
            identifier(key, "setting id")
            check_value(value, key)
        except BadRequest as exc:
            log.warning("%s: dropped a setting that cannot be read back: %s", path, exc.message.encode(
                "ascii", "backslashreplace").decode())
            continue
        kept[key] = value
    return kept


def write_settings(state: ServerState, settings: dict[str, Any]) -> None:
    path = _settings_path(state)
    if path.is_dir():
        raise BadRequest("conflict", f"{SETTINGS_FILE} in the user folder is a folder, not the settings file; "
                         "move it away to save settings", status=409)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    tmp.replace(path)


@router.get("/settings")
async def get_settings(state: ServerState = Depends(get_state)) -> dict[str, Any]:
    return read_settings(state)


@router.post("/settings")
async def post_settings(request: Request, state: ServerState = Depends(get_state)) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("invalid_request", "Expected a JSON object of settings.")
    for key in body:
        identifier(key, "setting id")
    with state.settings_lock:
        settings = read_settings(state)
        settings.update(body)
        write_settings(state, settings)
    return Response(status_code=200)


@router.get("/settings/{setting_id}")
async def get_setting(setting_id: str, state: ServerState = Depends(get_state)) -> Any:
    identifier(setting_id, "setting id")
    return JSONResponse(read_settings(state).get(setting_id))


@router.post("/settings/{setting_id}")
async def post_setting(setting_id: str, request: Request, state: ServerState = Depends(get_state)) -> Response:
    identifier(setting_id, "setting id")
    value = await json_body(request)
    with state.settings_lock:
        settings = read_settings(state)
        settings[setting_id] = value
        write_settings(state, settings)
    return Response(status_code=200)


# -- userdata --------------------------------------------------------------------------------------------------


def file_info(path: Path, root: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": path.relative_to(root).as_posix(), "size": stat.st_size, "modified": int(stat.st_mtime * 1000)}


def list_folder(folder: Path, root: Path, recurse: bool) -> list[Path]:
    if recurse:
        found = []
        for base, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [Path(base) / f for f in sorted(files) if not f.startswith(".")]
        return found
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _flag(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() in ("true", "1", "yes")


@router.get("/userdata")
async def list_userdata(request: Request, state: ServerState = Depends(get_state)) -> Response:
    root = state.config.user_dir
    directory = relative_path(request.query_params.get("dir", ""), "dir")
    if not directory:
        return error_response(400, "invalid_request", "dir is required, for example ?dir=workflows")
    try:
        folder = safe_join(root, directory)
    except UnsafePath as exc:
        return error_response(403, "forbidden_path", "Path refused", str(exc))
    if not folder.is_dir():
        return error_response(404, "not_found", f"No userdata folder {directory!r}")
    files = await run_in_threadpool(list_folder, folder, root, _flag(request, "recurse"))
    if _flag(request, "full_info"):
        return JSONResponse([{**file_info(p, folder), "path": p.relative_to(folder).as_posix()} for p in files])
    names = [p.relative_to(folder).as_posix() for p in files]
    if _flag(request, "split"):
        return JSONResponse([[name, *name.split("/")] for name in names])
    return JSONResponse(names)


@router.get("/v2/userdata")
async def list_userdata_v2(path: str = "", state: ServerState = Depends(get_state)) -> Response:
    root = state.config.user_dir
    relative_path(path, "path")
    try:
        folder = safe_join(root, path)
    except UnsafePath as exc:
        return error_response(403, "forbidden_path", "Path refused", str(exc))
    if not folder.is_dir():
        return error_response(404, "not_found", f"No userdata folder {path!r}")
    entries = []
    for item in sorted(folder.iterdir()):
        if item.name.startswith("."):
            continue
        entry: dict[str, Any] = {"name": item.name, "path": item.relative_to(root).as_posix(),
                                 "type": "directory" if item.is_dir() else "file"}
        if item.is_file():
            entry.update(size=item.stat().st_size, modified=int(item.stat().st_mtime * 1000))
        entries.append(entry)
    return JSONResponse(entries)


def userdata_target(request: Request) -> tuple[str, str | None]:
    """(file, move destination or None) from ``/userdata/<file>`` or ``/userdata/<file>/move/<dest>``."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    tail = path.split("/userdata/", 1)[1] if "/userdata/" in path else ""
    parts = tail.split("/")
    if len(parts) == 3 and parts[1] == "move":
        return unquote(parts[0]), unquote(parts[2])
    return unquote(tail), None


@router.api_route("/userdata/{target:path}", methods=["GET", "POST", "DELETE"])
async def userdata_file(request: Request, state: ServerState = Depends(get_state)) -> Response:
    root = state.config.user_dir
    name, dest = userdata_target(request)
    relative_path(name, "file")
    if dest is not None:
        relative_path(dest, "destination")
    try:
        path = safe_join(root, name)
        dest_path = safe_join(root, dest) if dest is not None else None
    except UnsafePath as exc:
        return error_response(403, "forbidden_path", "Path refused", str(exc))
    if path == root.resolve() or (dest_path is not None and dest_path == root.resolve()):
        return error_response(400, "invalid_request", "A file name is required")
    settings = _settings_path(state).resolve()
    if any(target is not None and settings in target.parents for target in (path, dest_path)):
        # A folder there would take the settings file's place: every /settings request would fail.
        return error_response(409, "conflict", f"{SETTINGS_FILE} is the settings file; it cannot hold files")
    overwrite = _flag(request, "overwrite", default=True)
    if request.method == "GET":
        if not path.is_file():
            return error_response(404, "not_found", f"No userdata file {name!r}")
        return served_file(path)
    if request.method == "DELETE":
        if not path.is_file():
            return error_response(404, "not_found", f"No userdata file {name!r}")
        path.unlink()
        return Response(status_code=204)
    try:
        if dest_path is not None:  # POST .../move/<dest>
            if not path.is_file():
                return error_response(404, "not_found", f"No userdata file {name!r}")
            if dest_path.is_dir():
                return error_response(409, "conflict", f"{dest!r} is a folder; move the file to a name inside it")
            if dest_path.exists() and not overwrite:
                return error_response(409, "conflict", f"{dest!r} already exists")
            dest_path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest_path)
            path = dest_path
        else:
            if path.is_dir():
                return error_response(409, "conflict", f"{name!r} is a folder; save the file under another name")
            if path.exists() and not overwrite:
                return error_response(409, "conflict", f"{name!r} already exists")
            body = await request.body()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_bytes(body)
            tmp.replace(path)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        # A folder in the name is a file already (workflows/a.json/b.json): the user's layout, not a server fault.
        return error_response(409, "conflict", f"Cannot write {dest or name!r}: a part of its path is a file, or "
                              "the name is a folder", exc.strerror or "")
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        return error_response(400, "invalid_request", f"{dest or name!r}: the path is too long for the file "
                              "system", exc.strerror or "")
    if _flag(request, "full_info"):
        return JSONResponse(file_info(path, root))
    return JSONResponse(path.relative_to(root.resolve()).as_posix())


@router.get("/global_subgraphs")
async def global_subgraphs() -> dict[str, Any]:
    return {}  # no pack ships subgraph blueprints yet


@router.get("/global_subgraphs/{subgraph_id}")
async def global_subgraph(subgraph_id: str) -> Response:
    return error_response(404, "not_found", f"No global subgraph {subgraph_id!r}")
