"""Request guards (token, same-origin, body size), safe joining of user-given paths, and how files go to browsers.

The guards are one plain ASGI middleware so they cover HTTP routes, static files and the WebSocket alike.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from starlette.responses import FileResponse

from hearth.web import signin
from hearth.web.boundary import api_error
from hearth.web.config import is_loopback
from hearth.web.signin import TOKEN_COOKIE


class UnsafePath(ValueError):
    """A user-given file name or folder that would leave its root."""


def safe_join(root: Path, *parts: str) -> Path:
    """``root / parts`` resolved, refusing anything that ends outside ``root`` (``..``, absolute paths, links)."""
    base = root.resolve()
    for part in parts:
        if part and (Path(part).is_absolute() or "\x00" in part or part.startswith(("/", "\\"))):
            raise UnsafePath(f"{part!r} is not a relative path")
    target = base.joinpath(*[p.replace("\\", "/") for p in parts if p]).resolve()
    if target != base and base not in target.parents:
        raise UnsafePath(f"{'/'.join(p for p in parts if p)!r} is outside the folder")
    return target


# What a browser may render from /view and /userdata: images, video and audio, each with its media type fixed here
# (a slim container has no mime.types, and nosniff then stops browsers from showing the file). Everything else --
# .html, .shtml, .xht, .svg, scripts, text -- goes out as an attachment: a saved file must never run script in
# this origin, and a deny-list always misses a type some browser renders.
INLINE_MEDIA = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
    ".bmp": "image/bmp", ".avif": "image/avif", ".apng": "image/apng", ".ico": "image/x-icon",
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska",
    ".mov": "video/quicktime", ".ogv": "video/ogg",
    ".flac": "audio/flac", ".mp3": "audio/mpeg", ".opus": "audio/ogg", ".ogg": "audio/ogg", ".oga": "audio/ogg",
    ".wav": "audio/wav", ".m4a": "audio/mp4", ".aac": "audio/aac",
}
# Attachments keep a type a script reading them expects; anything else is plain bytes.
ATTACHMENT_TYPES = {".json": "application/json", ".txt": "text/plain; charset=utf-8", ".csv": "text/csv"}


def disposition(kind: str, name: str) -> str:
    """A Content-Disposition header for any file name (quotes and non-Latin-1 letters included)."""
    return f"{kind}; filename*=UTF-8''{quote(name)}"


def served_file(path: Path) -> FileResponse:
    """``path`` as /view and /userdata send a file: inline only for the media types of :data:`INLINE_MEDIA`, as an
    attachment otherwise; never sniffed."""
    suffix = path.suffix.lower()
    if suffix in INLINE_MEDIA:
        return FileResponse(path, media_type=INLINE_MEDIA[suffix], content_disposition_type="inline",
                            filename=path.name, headers={"X-Content-Type-Options": "nosniff"})
    return FileResponse(path, media_type=ATTACHMENT_TYPES.get(suffix, "application/octet-stream"),
                        headers={"Content-Disposition": disposition("attachment", path.name), "X-Content-Type-Options": "nosniff"})


class BodyTooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: token (header, query or cookie), same-origin, and a request body limit."""

    def __init__(self, app: Any, *, token: str | None, max_body: int, allowed_origins: list[str],
                 allowed_hosts: list[str] | tuple[str, ...] = (), session_days: float = 30.0) -> None:
        self.app = app
        self.token = token
        self.session = None if token is None else signin.session_value(token)
        self.max_body = max_body
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}
        self.allowed_hosts = {h.strip().lower().rstrip(".") for h in allowed_hosts}
        self.session_days = session_days

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is None and not self.host_ok(headers):
            await self.refuse(scope, receive, send, 403, "forbidden_host", self.host_message(headers))
            return
        if not self.origin_ok(headers):
            await self.refuse(scope, receive, send, 403, "forbidden_origin",
                              "Cross-origin request refused: the Origin header does not match the Host.")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        set_cookie = False
        if self.token is not None:
            if scope["type"] == "http" and scope.get("path") == signin.SIGN_IN_PATH and scope.get("method") == "POST":
                await self.sign_in(receive, send)
                return
            given, how = self.token_from(headers, query)
            valid = given is not None and hmac.compare_digest(
                given.encode(), (self.session if how == "cookie" else self.token).encode())
            if not valid:
                if signin.wants_page(scope, headers):  # a browser: a page that asks, not a JSON error
                    failed = how == "query"
                    await signin.send_page(send, 401, signin.page(signin.without_token(scope), failed))
                    return
                await self.refuse(scope, receive, send, 401, "unauthorized",
                                  "This server needs a token: send 'Authorization: Bearer TOKEN', or open the page "
                                  "once with ?token=TOKEN.")
                return
            if how == "query" and signin.wants_page(scope, headers):
                # Exchanged for the cookie, and out of the address bar (and the history) at once.
                await signin.redirect(send, signin.without_token(scope), self.cookie())
                return
            set_cookie = how == "query"
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self.refuse(scope, receive, send, 413, "request_too_large", self.too_large_message())
            return
        await self.limited(scope, receive, send, set_cookie)

    async def limited(self, scope: dict[str, Any], receive: Any, send: Any, set_cookie: bool) -> None:
        seen = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge
            return message

        async def marked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if set_cookie:
                    message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", self.cookie())]}
            await send(message)

        try:
            await self.app(scope, counting_receive, marked_send)
        except BodyTooLarge:
            if not started:
                await self.refuse(scope, receive, send, 413, "request_too_large", self.too_large_message())

    def too_large_message(self) -> str:
        return f"Request body is larger than the server's limit of {self.max_body / 1024 / 1024:g} MB."

    def origin_ok(self, headers: dict[str, str]) -> bool:
        # ComfyUI's rule: a browser request whose Origin names another host than the one it was sent to is a
        # cross-site request (a page elsewhere driving this server) and is refused. Non-browser clients send none.
        origin = headers.get("origin")
        host = headers.get("host")
        if not origin or not host:
            return True
        if origin.rstrip("/").lower() in self.allowed_origins:
            return True
        return urlsplit(origin).netloc.lower() == host.lower()

    @staticmethod
    def token_from(headers: dict[str, str], query: dict[str, list[str]]) -> tuple[str | None, str | None]:
        """(what the request carries, where: "header", "query" or "cookie"); a cookie holds the session value."""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), "header"
        if query.get("token"):
            return query["token"][0], "query"
        if "cookie" in headers:
            cookie = SimpleCookie()
            try:
                cookie.load(headers["cookie"])
            except Exception:
                return None, None
            if TOKEN_COOKIE in cookie:
                return cookie[TOKEN_COOKIE].value, "cookie"
        return None, None

    def cookie(self) -> bytes:
        assert self.token is not None
        return signin.session_cookie(self.token, self.session_days)

    async def sign_in(self, receive: Any, send: Any) -> None:
        """The sign-in form's POST: the right token gets the cookie and goes back where it came from."""
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > signin.MAX_FORM_BYTES or not message.get("more_body"):
                break
        form = signin.read_form(body[:signin.MAX_FORM_BYTES])
        target = signin.safe_next(form.get("next", "/"))
        given = form.get("token", "")
        if given and hmac.compare_digest(given.encode(), str(self.token).encode()):
            await signin.redirect(send, target, self.cookie())
        else:
            await signin.send_page(send, 401, signin.page(target, failed=True))

    def host_ok(self, headers: dict[str, str]) -> bool:
        """Without a token, only this machine's names may reach the server: a page on another site whose name
        was made to resolve to 127.0.0.1 (DNS rebinding) sends its own name as the Host, and is refused."""
        host = headers.get("host")
        if not host:
            return True  # not a browser: every browser sends one
        name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 \
            else host
        name = name.lower().rstrip(".")
        return name in self.allowed_hosts or name.endswith(".localhost") or is_loopback(name)

    @staticmethod
    def host_message(headers: dict[str, str]) -> str:
        host = headers.get("host", "")[:100]
        return (f"Host {host!r} is not a name of this machine; a page elsewhere may be reaching this server through "
                f"DNS rebinding. Open it as localhost or 127.0.0.1, or start comfy serve with --allow-host NAME for "
                f"a name you trust.")

    @staticmethod
    async def refuse(scope: dict[str, Any], receive: Any, send: Any, status: int, kind: str, message: str) -> None:
        if scope["type"] == "websocket":
            # Closing before accept makes the server answer the handshake with 403.
            await receive()
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        body = json.dumps(api_error(kind, message)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
