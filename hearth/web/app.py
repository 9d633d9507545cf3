"""The app factory: one FastAPI app with the ComfyUI API (bare and under /api), plugin routes, pack web folders and UIs.

Mount order matters: API routes first, then plugin routes, then static folders, with ``/`` (the ComfyUI frontend
when installed, else Hearth's UI) last so it never shadows an API path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from hearth.web import frontend, plugin_events
from hearth.web.boundary import Boundary, SafeJSONResponse
from hearth.web.config import ServerConfig
from hearth.web.pages import PageHeaders
from hearth.web.routes import (
    BadRequest,
    docs,
    error_response,
    files,
    hearth,
    history,
    internal,
    jobs,
    nodes,
    prompt,
    templates,
    users,
    ws,
)
from hearth.web.runtime import ServerState
from hearth.web.security import Guard

log = logging.getLogger("hearth.web")
API_ROUTERS = (prompt.router, history.router, jobs.router, nodes.router, files.router, users.router, templates.router,
               hearth.router, internal.router, docs.router)


def create_app(config: ServerConfig, runtime: Runtime | None = None, *,
               plugins: PluginManager | None = None) -> FastAPI:
    """Build the server; the worker thread starts with the app's lifespan and stops with it.

    ``runtime``: what the server runs (``comfy serve`` builds it); by default one built from ``config``, with
    ``plugins`` when given.
    """
    state = ServerState(config, runtime, plugins=plugins)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            plugin_events.stop(app, state, events)
            await run_in_threadpool(state.stop)

    app = FastAPI(title="Hearth", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hearth = state
    _add_error_handlers(app)
    for router in API_ROUTERS:
        app.include_router(router)
        app.include_router(router, prefix="/api")
    app.include_router(ws.router)
    for route in state.plugins.routes():
        for prefix in ("", "/api"):
            app.add_api_route(prefix + route.path, _plugin_endpoint(route.handler), methods=[route.method.upper()],
                              include_in_schema=False)
    # What plugins serve beyond routes (ComfyUI packs' PromptServer routes): after the API, before static folders.
    events = plugin_events.start(app, state)
    for pack, folder in sorted(state.web_directories().items()):
        if folder.is_dir():
            app.mount(f"/extensions/{pack}", StaticFiles(directory=folder), name=f"extension-{pack}")
        else:
            log.warning("pack %s names WEB_DIRECTORY %s, which is not a folder", pack, folder)
    app.add_api_route("/hearth", _to_hearth_ui, include_in_schema=False)
    hearth_ui = PageHeaders(StaticFiles(directory=frontend.HEARTH_STATIC, html=True))
    app.mount("/hearth", hearth_ui, name="hearth-ui")
    comfy_frontend = frontend.static_folder() if config.serve_frontend else None
    state.frontend = "comfyui" if comfy_frontend is not None else "hearth"
    app.mount("/", StaticFiles(directory=comfy_frontend, html=True) if comfy_frontend else hearth_ui, name="root-ui")
    app.add_middleware(Boundary)  # inside the Guard: a request without the token learns nothing of the rules
    app.add_middleware(Guard, token=state.token, max_body=config.max_upload_bytes,
                       allowed_origins=config.allowed_origins, allowed_hosts=config.allowed_hosts,
                       session_days=config.session_days)
    app.add_middleware(InRuntime, runtime=state.runtime)
    return app


class InRuntime:
    """Runs every request inside the server's Runtime: ``/object_info`` calls ``INPUT_TYPES``, which list its model
    folders, and the thread pool a route hands work to copies the request's context."""

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        with self.runtime.activate():
            await self.app(scope, receive, send)


async def _to_hearth_ui() -> Response:
    return RedirectResponse("/hearth/")


def _plugin_endpoint(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
    """Plugins return a Response, or anything JSON-serializable (a NaN in it answers null, never a 500)."""

    async def endpoint(request: Request) -> Response:
        result = await handler(request)
        return result if isinstance(result, Response) else SafeJSONResponse(result)

    endpoint.__name__ = getattr(handler, "__name__", "plugin_route")
    return endpoint


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> Response:
        return error_response(exc.status, exc.kind, exc.message, exc.details, exc.field)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
        return error_response(400, "invalid_request", f"Invalid request parameters: {fields}", problems, fields)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "server_error", f"{type(exc).__name__}: {exc}")
