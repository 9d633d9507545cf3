"""Request dependencies: the server context (settings, database, storage), sessions and token checks."""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hearth.registry.manifest import normalize_name
from hearth.registry_server.accounts.models import Token
from hearth.registry_server.accounts.services import authenticate
from hearth.registry_server.cache import ResponseCache
from hearth.registry_server.settings import Settings
from hearth.registry_server.storage.services import Storage


@dataclass
class ServerContext:
    """What every service of one registry server process needs, built once at start from settings.

    Routes receive it as ``server`` (``Depends(get_server)``); "registry" stays the name of the whole service.
    """

    settings: Settings
    engine: Engine
    storage: Storage
    wake_verifier: threading.Event = field(default_factory=threading.Event)
    # Install counts are batched in memory and flushed by the worker: a read must not become a write.
    downloads: Counter = field(default_factory=Counter)
    downloads_lock: threading.Lock = field(default_factory=threading.Lock)
    cache: ResponseCache = field(default_factory=lambda: ResponseCache(0))

    def count_download(self, pack_id: str) -> None:
        """Count an install of a pack, by its normalised key (a cached answer knows only the URL's spelling)."""
        with self.downloads_lock:
            self.downloads[normalize_name(pack_id)] += 1

    def base_url(self, request: Request | None) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        if request is None:
            return "http://localhost:8080"
        return str(request.base_url).rstrip("/")


# Dependencies are `async def` on purpose: FastAPI runs a sync dependency in the thread pool, and three thread
# hops per request cost more CPU than the queries. None of them blocks: a Session connects lazily, in the
# endpoint's own thread.
async def get_server(request: Request) -> ServerContext:
    return request.app.state.server


async def get_session(server: ServerContext = Depends(get_server)) -> AsyncIterator[Session]:
    session = Session(server.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()  # returns the connection to the pool: a rollback, too short to be worth a thread hop


def token_from_request(request: Request, allow_cookie: bool = False) -> str | None:
    """A token from `Authorization: Bearer`, HTTP Basic (password, as uv and pip send it), or, for reads and
    the web pages only, the sign-in cookie: API writes never act on a cookie a browser attaches by itself."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return password or user
    return request.headers.get("x-hearth-token") or (request.cookies.get("hearth_token") if allow_cookie else None)


async def read_access(request: Request, server: ServerContext = Depends(get_server)) -> Token | None:
    """In private mode every read needs a token of scope read or above; otherwise reads are open."""
    if not server.settings.private:
        return None
    return await run_in_threadpool(_authenticate_read, server, token_from_request(request, allow_cookie=True))


def _authenticate_read(server: ServerContext, secret: str | None) -> Token:
    with Session(server.engine, expire_on_commit=False) as session:
        return authenticate(session, secret, "read")


def admin_access(request: Request, session: Session = Depends(get_session)) -> Token:
    """The JSON admin API: an admin user's admin token in a header, never the browser's cookie."""
    return check_admin(request, session, allow_cookie=False)


def check_admin(request: Request, session: Session, allow_cookie: bool) -> Token:
    from hearth.registry_server.accounts.models import User
    from hearth.registry_server.errors import ApiError

    token = authenticate(session, token_from_request(request, allow_cookie), "admin")
    user = session.get(User, token.user_id)
    if user is None or not user.is_admin:
        raise ApiError(403, "not_admin", "this needs an admin user's admin token")
    return token
