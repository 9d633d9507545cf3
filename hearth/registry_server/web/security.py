"""Browser-facing defences of the registry's pages: Content-Security-Policy, CSRF tokens and safe link URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from fastapi import Request

from hearth.registry_server.errors import ApiError

# Our pages need no script at all and load their stylesheet from /static: anything injected cannot run, cannot
# phone home, cannot post a form elsewhere and cannot frame us.
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
# FastAPI's API explorer (/docs, /redoc) loads its bundle from jsDelivr and starts it with one inline script:
# that script is allowed by its hash (computed from the page FastAPI renders), never by 'unsafe-inline'.
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")
DOCS_CSP = ("default-src 'none'; script-src https://cdn.jsdelivr.net {hashes}; "
            "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
            "font-src https://fonts.gstatic.com; img-src 'self' https: data:; connect-src 'self'; "
            "worker-src blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
EXTRA_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                 (b"referrer-policy", b"same-origin"))
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)

CSRF_FIELD = "csrf_token"
LOGIN_CSRF_COOKIE = "hearth_csrf"
SAFE_SCHEMES = ("http", "https")


def docs_csp(body: bytes) -> str:
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(m).digest()).decode()}'"
                      for m in _INLINE_SCRIPT.findall(body))
    return DOCS_CSP.format(hashes=hashes)


class SecurityHeadersMiddleware:
    """ASGI middleware: every HTML response gets a strict CSP (and nosniff, no framing), whatever route made it."""

    def __init__(self, app, public_url: str | None = None):  # noqa: ANN001
        self.app = app
        # Pages link their stylesheet and post their forms through the public URL when one is set: that origin
        # is "self" too.
        extra = f" {_origin(public_url)}" if public_url else ""
        self.page_csp = PAGE_CSP.replace("style-src 'self'", f"style-src 'self'{extra}") \
            .replace("form-action 'self'", f"form-action 'self'{extra}").encode()

    async def __call__(self, scope, receive, send):  # noqa: ANN001, ANN204
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        docs = scope["path"] in DOCS_PATHS
        held: dict = {}

        async def wrapped(message):  # noqa: ANN001, ANN202
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if not ctype.startswith(b"text/html"):
                    return await send(message)
                headers = [(k, v) for k, v in headers if k.lower() != b"content-security-policy"]
                headers += EXTRA_HEADERS
                if docs:  # the hash needs the body: hold the start until it has been read
                    held["start"], held["headers"], held["body"] = message, headers, b""
                    return None
                headers.append((b"content-security-policy", self.page_csp))
                return await send({**message, "headers": headers})
            if message["type"] == "http.response.body" and "start" in held:
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return None
                headers = held["headers"] + [(b"content-security-policy", docs_csp(held["body"]).encode())]
                await send({**held.pop("start"), "headers": headers})
                return await send({"type": "http.response.body", "body": held["body"]})
            return await send(message)

        return await self.app(scope, receive, wrapped)


def safe_url(value: object) -> str:
    """The URL if a browser may follow it as a link (http or https with a host), else "" (javascript:, data:,
    vbscript:, relative tricks and anything with control characters or spaces are never links)."""
    text = str(value or "").strip()
    if not text or any(ord(c) < 33 or c == "\x7f" for c in text):
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return text if parts.scheme.lower() in SAFE_SCHEMES and parts.netloc else ""


def csrf_token_for(secret: str) -> str:
    """A form token bound to the signed-in token: another site can neither read it nor compute it (the cookie is
    httponly), and every server process derives the same one without shared state."""
    return hmac.new(secret.encode(), b"hearth-registry-csrf-v1", hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(request: Request, public_base: str = "") -> None:
    """A browser names the page a form came from; refuse one from another origin outright (the registry's own
    address as the request reached it, or its public URL behind a proxy)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        allowed = {_origin(str(request.url))} | ({_origin(public_base)} if public_base else set())
        if _origin(origin) not in allowed:
            raise ApiError(403, "csrf_failed", f"form posted from {origin}, not from this registry "
                                               f"({', '.join(sorted(allowed))})")


def check_csrf(request: Request, submitted: str, expected: str | None, public_base: str = "") -> None:
    """Refuse a form post whose CSRF token is missing or wrong (403), naming what to do."""
    check_same_origin(request, public_base)
    if not expected or not submitted or not hmac.compare_digest(submitted.encode(), expected.encode()):
        raise ApiError(403, "csrf_failed", "the form's CSRF token is missing or wrong: reload the page and submit "
                                           "the form again")
