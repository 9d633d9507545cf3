"""ComfyUI packs' ``PromptServer`` on ``comfy serve``: their routes mounted, their ``send_sync`` events carried.

A pack's handler is written for aiohttp: it takes an aiohttp request and returns an aiohttp response. Each one is
mounted as a Starlette endpoint that hands it an :class:`AiohttpRequest` (aiohttp's request interface over the
Starlette request) and converts what it returns, from Hearth's ``aiohttp.web`` stand-in or from a real aiohttp.
aiohttp's path patterns (``{name}``, ``{name:regex}``) become Starlette's, a regex keeping its meaning.

The server hands this plugin its application and an events carrier through the ``on_server_start`` hook
(:mod:`hearth_comfy_compat.plugin`); ``PromptServer.send_sync`` publishes through that carrier.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.convertors import CONVERTOR_TYPES, Convertor, register_url_convertor
from starlette.requests import Request as StarletteRequest

from hearth_comfy_compat import aiohttp_web
from hearth_comfy_compat.server import PromptServer

log = logging.getLogger("hearth.comfy_compat")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class _Body:
    """``request.content``: aiohttp's stream reader, over the already-received body."""

    def __init__(self, request: AiohttpRequest) -> None:
        self._request = request
        self._offset = 0

    async def read(self, n: int = -1) -> bytes:
        data = await self._request.read()
        end = len(data) if n < 0 else self._offset + n
        chunk, self._offset = data[self._offset:end], min(end, len(data))
        return chunk

    async def readany(self) -> bytes:
        return await self.read()


class _RelUrl:
    """``request.rel_url``: path and query of the request (yarl's URL interface, the parts packs use)."""

    def __init__(self, path: str, query_string: str, query: aiohttp_web.MultiDict) -> None:
        self.path = path
        self.raw_path = path
        self.query_string = query_string
        self.query = query
        self.name = path.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.path + (f"?{self.query_string}" if self.query_string else "")


class _Url(_RelUrl):
    """``request.url``: the absolute URL, with yarl's parts."""

    def __init__(self, url: Any, query: aiohttp_web.MultiDict) -> None:
        super().__init__(url.path, url.query, query)
        self.scheme, self.host, self.port = url.scheme, url.hostname, url.port
        self._text = str(url)

    def __str__(self) -> str:
        return self._text


class AiohttpRequest(aiohttp_web.Request):
    """aiohttp's request interface (``query``, ``match_info``, ``json()``, ``post()``...) over Starlette's."""

    def __init__(self, request: StarletteRequest, app: Any) -> None:
        self._request = request
        self._body: bytes | None = None
        self._post: aiohttp_web.MultiDict | None = None
        self._store: dict[str, Any] = {}
        self.app = app
        self.method = request.method
        self.path = request.url.path
        self.query_string = request.url.query
        self.query = aiohttp_web.MultiDict(request.query_params.multi_items())
        self.rel_url = _RelUrl(self.path, self.query_string, self.query)
        self.url = _Url(request.url, self.query)
        self.match_info = dict(request.path_params)
        self.headers = request.headers
        self.cookies = dict(request.cookies)
        self.host = request.headers.get("host", "")
        self.scheme = request.url.scheme
        self.remote = request.client.host if request.client else None
        self.content_type = (request.headers.get("content-type") or "application/octet-stream").split(";")[0].strip()
        self.content = _Body(self)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value and value.isdigit() else None

    @property
    def can_read_body(self) -> bool:
        return self._body is None or bool(self._body)

    body_exists = can_read_body

    async def read(self) -> bytes:
        if self._body is None:
            self._body = await self._request.body()
        return self._body

    async def text(self) -> str:
        return (await self.read()).decode("utf-8")

    async def json(self, *, loads: Callable[[str], Any] = json.loads) -> Any:
        return loads(await self.text())

    async def post(self) -> aiohttp_web.MultiDict:
        """Form fields; uploaded files as :class:`aiohttp_web.FileField` (``.file``, ``.filename``...)."""
        if self._post is None:
            items: list[tuple[str, Any]] = []
            if self.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
                await self.read()  # Starlette caches the body; form() reads it from there
                form = await self._request.form()
                for name, value in form.multi_items():
                    if isinstance(value, str):
                        items.append((name, value))
                    else:
                        data = await value.read()
                        items.append((name, aiohttp_web.FileField(name, value.filename or "", io.BytesIO(data),
                                                                  value.content_type or "application/octet-stream",
                                                                  dict(value.headers))))
            self._post = aiohttp_web.MultiDict(items)
        return self._post

    async def multipart(self) -> Any:
        raise NotImplementedError("Hearth's server does not offer request.multipart(); use await request.post()")

    def __getitem__(self, key: str) -> Any:
        return self._store[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._store[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self._store.get(key, default)


def to_response(result: Any) -> Response:
    """A pack handler's return value (or raised HTTP exception) as a Starlette response."""
    if isinstance(result, Response):
        return result
    if result is None:
        raise TypeError("the route handler returned None; it must return a web.Response")
    path = getattr(result, "path", None) if isinstance(result, aiohttp_web.FileResponse) else getattr(result, "_path", None)
    status = int(getattr(result, "status", 200))
    headers = {str(k): str(v) for k, v in dict(getattr(result, "headers", {}) or {}).items()}
    if path is not None:
        if not Path(path).is_file():
            # ComfyUI's error shape, as the rest of the API answers.
            return JSONResponse({"error": {"type": "not_found", "message": f"file not found: {Path(path).name}",
                                           "details": "", "extra_info": {}}, "node_errors": {}}, status_code=404)
        headers.pop("Content-Length", None)
        return FileResponse(path, status_code=status, headers=headers)
    body = getattr(result, "body", b"")
    if body is None:
        body = b""
    elif not isinstance(body, (bytes, bytearray)):
        value = getattr(body, "_value", body)  # a real aiohttp Payload keeps its bytes there
        body = value if isinstance(value, (bytes, bytearray)) else str(value).encode()
    media = headers.pop("Content-Type", None) or headers.pop("content-type", None)
    if media is None and getattr(result, "content_type", None):
        media = str(result.content_type)
    headers.pop("Content-Length", None)
    return Response(bytes(body), status_code=status, headers=headers, media_type=media)


def endpoint(handler: Callable[..., Awaitable[Any]], app: Any) -> Callable[[StarletteRequest], Awaitable[Response]]:
    """A Starlette endpoint that runs an aiohttp-style handler."""

    async def run(request: StarletteRequest) -> Response:
        try:
            result = handler(AiohttpRequest(request, app))
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            if isinstance(exc, aiohttp_web.StreamResponse) or _is_aiohttp_response(exc):
                return to_response(exc)
            raise
        return to_response(result)

    run.__name__ = getattr(handler, "__name__", "pack_route")
    return run


def _is_aiohttp_response(value: Any) -> bool:
    return type(value).__module__.startswith("aiohttp") and hasattr(value, "status")


_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::((?:[^{}]|\{[^{}]*\})+))?\}")


def starlette_path(path: str) -> str:
    """An aiohttp path pattern in Starlette's syntax: ``{name:regex}`` gets a convertor matching that regex."""

    def convert(match: re.Match[str]) -> str:
        name, pattern = match.group(1), match.group(2)
        if pattern is None:
            return "{" + name + "}"
        if pattern in (".*", ".+"):
            return "{" + name + ":path}"
        key = "aiohttp_" + hashlib.sha1(pattern.encode()).hexdigest()[:12]
        if key not in CONVERTOR_TYPES:
            convertor = type(key, (Convertor,), {"regex": pattern, "convert": lambda self, v: v,
                                                 "to_string": lambda self, v: str(v)})
            register_url_convertor(key, convertor())
        return "{" + name + ":" + key + "}"

    return _PARAM.sub(convert, path)


def mount(app: FastAPI, server: PromptServer | None = None) -> list[str]:
    """Add every route and static folder packs gave ``PromptServer``; returns the paths, for the log."""
    server = server or PromptServer.instance
    mounted: list[str] = []
    for definition, api_twin in server.route_definitions():
        if getattr(definition, "prefix", None) is not None and getattr(definition, "handler", None) is None:
            folder = Path(definition.path)
            if not definition.prefix.strip("/"):
                log.warning("a pack asked to serve %s at /, over the UI and the API; refused", folder)
                continue
            if not folder.is_dir():
                log.warning("a pack serves %s from %s, which is not a folder; skipped", definition.prefix, folder)
                continue
            app.mount(definition.prefix.rstrip("/") or "/", StaticFiles(directory=folder))
            mounted.append(definition.prefix)
            continue
        method = getattr(definition, "method", None)
        path = getattr(definition, "path", None)
        handler = getattr(definition, "handler", None)
        if not (isinstance(method, str) and isinstance(path, str) and callable(handler)):
            log.warning("skipped a pack route that is not a route definition: %r", definition)
            continue
        methods = list(METHODS) if method == "*" else [method.upper()]
        for prefix in ("", "/api") if api_twin else ("",):
            app.add_api_route(prefix + starlette_path(path), endpoint(handler, server.app), methods=methods,
                              include_in_schema=False)
        mounted.append(f"{method} {path}")
    return mounted


def install(app: FastAPI, events: Any, queue: Any) -> None:
    """Mount the packs' routes on ``app`` and send ``PromptServer`` events through the server's ``events``."""
    server = PromptServer.instance
    server.attach(events, queue=queue)
    mounted = mount(app, server)
    if mounted:
        log.info("custom-node routes: %s", ", ".join(mounted))


def uninstall(events: Any) -> None:
    PromptServer.instance.detach(events)
