"""The part of ``aiohttp.web`` that ComfyUI packs use to add HTTP routes, for when aiohttp is not installed.

Packs write ``from aiohttp import web`` and then ``@PromptServer.instance.routes.get("/my/path")`` handlers that
take a request and return ``web.json_response(...)`` or ``web.Response(...)``. Hearth's server is not aiohttp:
the route table here only records routes, and ``server_routes.py`` mounts them on Hearth's app, handing each
handler a :class:`Request` (aiohttp's request interface over the server's request) and turning what it returns
(these responses, or a real aiohttp's) into the server's responses.

The import hook serves this module as ``aiohttp.web`` only when the real aiohttp is absent; aiohttp's client
(``aiohttp.ClientSession``) is not provided, and a pack that uses it is told so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Handler = Callable[..., Any]


class MultiDict(Mapping[str, Any]):
    """aiohttp's read-only multi-dict: ``get`` and ``[]`` give the first value, ``getall`` every value."""

    def __init__(self, items: Iterable[tuple[str, Any]] = ()) -> None:
        self._items = list(items)

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._items))

    def __len__(self) -> int:
        return len(dict.fromkeys(name for name, _ in self._items))

    def getone(self, key: str, default: Any = ...) -> Any:
        try:
            return self[key]
        except KeyError:
            if default is ...:
                raise
            return default

    def getall(self, key: str, default: Any = ...) -> list[Any]:
        found = [value for name, value in self._items if name == key]
        if not found and default is not ...:
            return default
        if not found:
            raise KeyError(key)
        return found

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return list(self._items)

    def __repr__(self) -> str:
        return f"<MultiDict {self._items!r}>"


@dataclass
class FileField:
    """An uploaded file in ``await request.post()``; ``file`` is a readable binary file object."""

    name: str
    filename: str
    file: Any
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


# -- responses -------------------------------------------------------------------------------------------------


class StreamResponse:
    """A response written piece by piece; Hearth collects the pieces and sends them when the handler returns."""

    def __init__(self, *, status: int = 200, reason: str | None = None, headers: Mapping[str, str] | None = None
                 ) -> None:
        self.status = status
        self.reason = reason
        self.headers: dict[str, str] = dict(headers or {})
        self._chunks: list[bytes] = []
        self.prepared = False

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip()

    @content_type.setter
    def content_type(self, value: str) -> None:
        self.headers["Content-Type"] = value

    def set_status(self, status: int, reason: str | None = None) -> None:
        self.status, self.reason = status, reason

    async def prepare(self, request: Any) -> None:
        self.prepared = True

    async def write(self, data: bytes) -> None:
        self._chunks.append(bytes(data))

    async def write_eof(self, data: bytes = b"") -> None:
        if data:
            self._chunks.append(bytes(data))

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)


class Response(StreamResponse):
    """aiohttp's ``web.Response``: ``body`` (bytes) or ``text``, a status, headers and a content type."""

    def __init__(self, *, body: Any = None, status: int = 200, reason: str | None = None, text: str | None = None,
                 headers: Mapping[str, str] | None = None, content_type: str | None = None,
                 charset: str | None = None) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        if body is not None and text is not None:
            raise ValueError("web.Response takes body or text, not both")
        if text is not None:
            self._chunks = [text.encode(charset or "utf-8")]
            content_type = content_type or "text/plain"
        elif body is not None:
            self._chunks = [body.encode(charset or "utf-8") if isinstance(body, str) else bytes(body)]
        if content_type is not None:
            self.headers["Content-Type"] = content_type + (f"; charset={charset or 'utf-8'}"
                                                           if text is not None or charset else "")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def json_response(data: Any = None, *, text: str | None = None, body: bytes | None = None, status: int = 200,
                  reason: str | None = None, headers: Mapping[str, str] | None = None,
                  content_type: str = "application/json", dumps: Callable[[Any], str] = json.dumps) -> Response:
    if text is None and body is None:
        text = dumps(data)
    if text is not None:
        return Response(text=text, status=status, reason=reason, headers=headers, content_type=content_type)
    return Response(body=body, status=status, reason=reason, headers=headers, content_type=content_type)


class FileResponse(StreamResponse):
    """A file sent from disk (``web.FileResponse(path)``)."""

    def __init__(self, path: str | Path, chunk_size: int = 256 * 1024, status: int = 200,
                 reason: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self.path = Path(path)


class HTTPException(Response, Exception):  # noqa: N818 - aiohttp's names
    """Raised (or returned) by a handler to answer with an HTTP error status."""

    status_code = 500

    def __init__(self, *, headers: Mapping[str, str] | None = None, reason: str | None = None,
                 body: Any = None, text: str | None = None, content_type: str | None = None) -> None:
        if body is None and text is None:
            text = f"{self.status_code}: {reason or type(self).__name__}"
        Response.__init__(self, body=body, status=self.status_code, reason=reason, text=text, headers=headers,
                          content_type=content_type)
        Exception.__init__(self, text or reason or type(self).__name__)


class HTTPRedirection(HTTPException):
    def __init__(self, location: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.headers["Location"] = str(location)
        self.location = str(location)


def _http_error(name: str, status: int, base: type = HTTPException) -> type:
    return type(name, (base,), {"status_code": status, "__module__": __name__})


HTTPOk = _http_error("HTTPOk", 200)
HTTPNoContent = _http_error("HTTPNoContent", 204)
HTTPMovedPermanently = _http_error("HTTPMovedPermanently", 301, HTTPRedirection)
HTTPFound = _http_error("HTTPFound", 302, HTTPRedirection)
HTTPSeeOther = _http_error("HTTPSeeOther", 303, HTTPRedirection)
HTTPTemporaryRedirect = _http_error("HTTPTemporaryRedirect", 307, HTTPRedirection)
HTTPBadRequest = _http_error("HTTPBadRequest", 400)
HTTPUnauthorized = _http_error("HTTPUnauthorized", 401)
HTTPForbidden = _http_error("HTTPForbidden", 403)
HTTPNotFound = _http_error("HTTPNotFound", 404)
HTTPMethodNotAllowed = _http_error("HTTPMethodNotAllowed", 405)
HTTPConflict = _http_error("HTTPConflict", 409)
HTTPRequestEntityTooLarge = _http_error("HTTPRequestEntityTooLarge", 413)
HTTPUnsupportedMediaType = _http_error("HTTPUnsupportedMediaType", 415)
HTTPInternalServerError = _http_error("HTTPInternalServerError", 500)
HTTPServiceUnavailable = _http_error("HTTPServiceUnavailable", 503)


# -- routes ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteDef:
    """One route: an HTTP method (``*`` for any), an aiohttp path pattern and its handler."""

    method: str
    path: str
    handler: Handler
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StaticDef:
    """A folder served under a URL prefix (``web.static(prefix, path)``)."""

    prefix: str
    path: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def route(method: str, path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return RouteDef(method.upper(), path, handler, kwargs)


def get(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("GET", path, handler, **kwargs)


def post(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("POST", path, handler, **kwargs)


def put(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("PUT", path, handler, **kwargs)


def patch(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("PATCH", path, handler, **kwargs)


def delete(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("DELETE", path, handler, **kwargs)


def head(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("HEAD", path, handler, **kwargs)


def static(prefix: str, path: str | Path, **kwargs: Any) -> StaticDef:
    return StaticDef(prefix, str(path), kwargs)


class RouteTableDef(list):
    """aiohttp's decorator route table: ``@routes.get("/path")`` records the handler and returns it unchanged."""

    def route(self, method: str, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.append(RouteDef(method.upper(), path, handler, kwargs))
            return handler

        return register

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("HEAD", path, **kwargs)

    def view(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("*", path, **kwargs)

    def static(self, prefix: str, path: str | Path, **kwargs: Any) -> None:
        self.append(StaticDef(prefix, str(path), kwargs))


class UrlDispatcher:
    """``app.router``: the ``add_*`` calls packs make on ComfyUI's aiohttp application."""

    def __init__(self, table: RouteTableDef) -> None:
        self._table = table

    @property
    def frozen(self) -> bool:
        """Always False: Hearth's route table takes additions at any time (packs check before adding, as
        aiohttp's router refuses them once the application started)."""
        return False

    def add_route(self, method: str, path: str, handler: Handler, **kwargs: Any) -> RouteDef:
        definition = RouteDef(method.upper(), path, handler, kwargs)
        self._table.append(definition)
        return definition

    def add_get(self, path: str, handler: Handler, **kwargs: Any) -> RouteDef:
        kwargs.pop("allow_head", None)
        return self.add_route("GET", path, handler, **kwargs)

    def add_post(self, path: str, handler: Handler, **kwargs: Any) -> RouteDef:
        return self.add_route("POST", path, handler, **kwargs)

    def add_put(self, path: str, handler: Handler, **kwargs: Any) -> RouteDef:
        return self.add_route("PUT", path, handler, **kwargs)

    def add_delete(self, path: str, handler: Handler, **kwargs: Any) -> RouteDef:
        return self.add_route("DELETE", path, handler, **kwargs)

    def add_static(self, prefix: str, path: str | Path, **kwargs: Any) -> StaticDef:
        definition = StaticDef(prefix, str(path), kwargs)
        self._table.append(definition)
        return definition

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._table))


class Application(dict):
    """Stands for ComfyUI's aiohttp application: what packs add to it is mounted bare (no ``/api`` twin)."""

    def __init__(self, *, middlewares: Iterable[Any] = (), client_max_size: int = 1024 ** 2, **kwargs: Any) -> None:
        super().__init__()
        self.routes = RouteTableDef()
        self.router = UrlDispatcher(self.routes)
        self.middlewares = list(middlewares)  # recorded, not run: Hearth's server has its own guard
        self.on_startup: list[Any] = []
        self.on_shutdown: list[Any] = []
        self.on_cleanup: list[Any] = []

    def add_routes(self, routes: Iterable[RouteDef | StaticDef]) -> list[Any]:
        added = list(routes)
        self.routes.extend(added)
        return added


def middleware(fn: Handler) -> Handler:
    return fn


class Request:
    """Type name for handler annotations (``async def h(request: web.Request)``); the server passes an object
    with aiohttp's request interface, built by ``server_routes.py``."""


BaseRequest = Request
