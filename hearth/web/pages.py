"""The headers of Hearth's own pages (its browser UI and the sign-in page): a strict Content-Security-Policy.

Hearth's pages load their scripts, styles, images and sockets from this server alone, use no inline script or
style, and are never framed, so a policy saying exactly that costs nothing and stops injected markup from running.
The ComfyUI frontend, served at / when installed, is not Hearth's page and keeps its own rules.
"""

from __future__ import annotations

from typing import Any

PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
            "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
PAGE_HEADERS = [(b"content-security-policy", PAGE_CSP.encode()), (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin")]


class PageHeaders:
    """ASGI wrapper adding :data:`PAGE_HEADERS` to every HTTP response of the app it wraps (a static folder)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in PAGE_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
