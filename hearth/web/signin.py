"""Signing a browser in to a server that needs a token: the page that asks for it, and the session cookie.

A browser that arrives without the token gets a small page with one field instead of a raw JSON 401; the token it
posts (or a ``?token=`` link) is exchanged for an HttpOnly, SameSite=Strict cookie that lasts ``session_days``, so
a restarted browser stays signed in, and a redirect takes the token out of the address bar. The cookie holds a
value derived from the token, never the token itself. API clients keep getting JSON 401s.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from typing import Any
from urllib.parse import parse_qsl, urlencode

from hearth.web.pages import PAGE_CSP

TOKEN_COOKIE = "hearth_token"
SIGN_IN_PATH = "/hearth/sign-in"
MAX_FORM_BYTES = 4096


def session_value(token: str) -> str:
    """The cookie's value for ``token``: a keyed hash, so the browser's cookie store never holds the token."""
    return hmac.new(token.encode(), b"hearth-browser-session", hashlib.sha256).hexdigest()


def session_cookie(token: str, days: float) -> bytes:
    return (f"{TOKEN_COOKIE}={session_value(token)}; Path=/; Max-Age={int(days * 86400)}; HttpOnly; "
            f"SameSite=Strict").encode("latin-1")


def wants_page(scope: dict[str, Any], headers: dict[str, str]) -> bool:
    """Whether this is a browser navigating (a page is wanted), not a script calling the API."""
    return scope["type"] == "http" and scope.get("method") == "GET" and "text/html" in headers.get("accept", "")


def without_token(scope: dict[str, Any]) -> str:
    """The request's path and query with the ``token`` parameter taken out (where the redirect goes)."""
    query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
             if k != "token"]
    path = scope.get("path") or "/"
    return path + ("?" + urlencode(query) if query else "")


def safe_next(target: str) -> str:
    """A same-site path to return to after signing in; anything else (another host, a scheme) is ``/``."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n\\"):
        return "/"
    return target


def page(next_path: str, failed: bool) -> bytes:
    message = '<p class="error">That token is not this server\'s.</p>' if failed else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Sign in - Hearth</title><link rel="icon" href="data:,"></head>
<body><main><h1>Hearth</h1>
<p>This server needs its token. It was printed when <code>comfy serve</code> started.</p>{message}
<form method="post" action="{SIGN_IN_PATH}">
<input type="hidden" name="next" value="{html.escape(safe_next(next_path))}">
<label>Token <input name="token" type="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button></form></main></body></html>
""".encode()


def read_form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def send_page(send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"content-security-policy", PAGE_CSP.encode()), (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


async def redirect(send: Any, location: str, cookie: bytes | None) -> None:
    headers = [(b"location", location.encode("latin-1", "replace")), (b"content-length", b"0"),
               (b"cache-control", b"no-store")]
    if cookie is not None:
        headers.append((b"set-cookie", cookie))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
