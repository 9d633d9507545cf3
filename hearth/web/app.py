"""The app factory: one FastAPI app with the ComfyUI API (bare and under /api), plugin routes, pack web folders and UIs.

Mount order matters: API routes first, then plugin routes, then static folders, with ``/`` (the ComfyUI frontend
when installed, else Hearth's UI) last so it never shadows an API path.

The app answers before its plugins are loaded. When it starts, the plugins load in a thread (``import torch`` and
every pack: seconds); meanwhile the routes that read only the store, the folders and the node catalogue cached by
the last run (:data:`ANSWERED_WHILE_LOADING`) answer at once, and every other request -- a prompt, ``/extensions``,
a pack's own route -- waits for the plugins (:class:`LoadingGate`, bounded by ``ServerConfig.load_timeout``). Once
they are in, what they serve is attached (their routes, ``on_server_start``, their packs' web folders) before the
static folders, the worker starts, and the waiting requests go on. ``/extensions`` waits rather than answering from
the catalogue: the frontend loads every script it lists at once, and those scripts call their pack's routes, which
exist only once the pack is imported. A Runtime handed over with its plugins loaded is attached before the first
request, as before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
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
from hearth.web.runtime import PluginsNotLoaded, ServerState, memory_manager
from hearth.web.security import Guard

log = logging.getLogger("hearth.web")
CATALOGUE_SAVE_DELAY_S = 5.0  # after the plugins load, before the catalogue for the next start is built
API_ROUTERS = (prompt.router, history.router, jobs.router, nodes.router, files.router, users.router, templates.router,
               hearth.router, internal.router, docs.router)


def create_app(config: ServerConfig, runtime: Runtime | None = None, *,
               plugins: PluginManager | None = None) -> FastAPI:
    """Build the server; its plugins load, and the worker thread starts, with the app's lifespan.

    ``runtime``: what the server runs (``comfy serve`` builds it); by default one built from ``config``, with
    ``plugins`` when given.
    """
    state = ServerState(config, runtime, plugins=plugins)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start(asyncio.get_running_loop())
        loading = asyncio.create_task(_load_plugins(app, state))
        if state.plugins_given:  # nothing slow to wait for: serve them from the first request on
            await loading
        try:
            yield
        finally:
            loading.cancel()  # a server stopped mid-load leaves the importing thread behind (a daemon)
            if app.state.plugin_events is not None:
                plugin_events.stop(app, state, app.state.plugin_events)
            await run_in_threadpool(state.stop)

    app = FastAPI(title="Hearth", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hearth = state
    app.state.plugin_events = None  # the plugins' events carrier, once they are loaded
    _add_error_handlers(app)
    for router in API_ROUTERS:
        app.include_router(router)
        app.include_router(router, prefix="/api")
    app.include_router(ws.router)
    ui_start = len(app.router.routes)  # what the plugins serve goes here, before the UI folders
    app.add_api_route("/hearth", _to_hearth_ui, include_in_schema=False)
    hearth_ui = PageHeaders(StaticFiles(directory=frontend.HEARTH_STATIC, html=True))
    app.mount("/hearth", hearth_ui, name="hearth-ui")
    comfy_frontend = frontend.static_folder() if config.serve_frontend else None
    state.frontend = "comfyui" if comfy_frontend is not None else "hearth"
    app.mount("/", StaticFiles(directory=comfy_frontend, html=True) if comfy_frontend else hearth_ui, name="root-ui")
    app.state.ui_routes = app.router.routes[ui_start:]
    app.add_middleware(LoadingGate, state=state, root_folder=Path(comfy_frontend or frontend.HEARTH_STATIC))
    app.add_middleware(Boundary)  # inside the Guard: a request without the token learns nothing of the rules
    app.add_middleware(Guard, token=state.token, max_body=config.max_upload_bytes,
                       allowed_origins=config.allowed_origins, allowed_hosts=config.allowed_hosts,
                       session_days=config.session_days)
    app.add_middleware(InRuntime, runtime=state.runtime)
    return app


async def _load_plugins(app: FastAPI, state: ServerState) -> None:
    """Load the plugins off the event loop, attach what they serve, start the worker, let waiting requests on."""
    try:
        await _in_thread(state.load_plugins)
        # The model manager (torch) too, before the worker starts: made later, by the first /system_stats or node,
        # it imported torch while a prompt ran, and that request waited seconds on a busy machine.
        await _in_thread(lambda: memory_manager(state.runtime))
        _attach_plugins(app, state)
        state.start_worker()
    except Exception as exc:  # noqa: BLE001 - a Hearth bug or a plugin breaking the hook contract: reported below
        log.error("the plugins failed to load: %s: %s", type(exc).__name__, exc, exc_info=True)
        state.mark_loaded(exc)
    else:
        state.mark_loaded()
    for callback in state.on_loaded:
        callback(state)
    if state.is_loaded():
        # The frontend's first requests come as soon as the plugins are in; building the catalogue (every node's
        # INPUT_TYPES, ~0.6 s of CPU) would compete with them for the interpreter, so it waits a little.
        await asyncio.sleep(CATALOGUE_SAVE_DELAY_S)
        await _in_thread(state.save_catalogue)


def _in_thread(fn: Callable[[], Any]) -> asyncio.Future[Any]:
    """``fn()`` in a daemon thread of its own: a server stopped mid-import exits without waiting for it."""
    done: Future[Any] = Future()

    def run() -> None:
        done.set_running_or_notify_cancel()  # from here on a task that stops awaiting cannot cancel it
        try:
            done.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, which reports it
            done.set_exception(exc)

    threading.Thread(target=run, name="hearth-plugins", daemon=True).start()
    return asyncio.wrap_future(done)


def _attach_plugins(app: FastAPI, state: ServerState) -> None:
    """Serve what the loaded plugins serve: their routes, what ``on_server_start`` adds, their packs' web folders.

    Runs on the event loop, so no request sees the route list half-changed; the UI folders (which match every
    path) are moved back behind what was added.
    """
    for route in state.plugins.routes():
        for prefix in ("", "/api"):
            app.add_api_route(prefix + route.path, _plugin_endpoint(route.handler), methods=[route.method.upper()],
                              include_in_schema=False)
    # What plugins serve beyond routes (ComfyUI packs' PromptServer routes): after the API, before static folders.
    app.state.plugin_events = plugin_events.start(app, state)
    for pack, folder in sorted(state.web_directories().items()):
        if folder.is_dir():
            app.mount(f"/extensions/{pack}", StaticFiles(directory=folder), name=f"extension-{pack}")
        else:
            log.warning("pack %s names WEB_DIRECTORY %s, which is not a folder", pack, folder)
    routes = app.router.routes
    for route in app.state.ui_routes:
        routes.remove(route)
        routes.append(route)


# Hearth's routes that read only the store, the folders and the node catalogue: they answer while the plugins load.
# Any other request waits for them, a route added later included until it is listed here.
ANSWERED_WHILE_LOADING = frozenset({
    "GET /prompt", "GET /queue", "POST /queue", "GET /history", "GET /history/{prompt_id}", "POST /history",
    "GET /jobs", "GET /jobs/{job_id}", "GET /models", "GET /models/{folder}", "GET /experiment/models",
    "GET /experiment/models/{folder}", "GET /embeddings", "GET /i18n", "GET /features", "GET /system_stats",
    "GET /view", "POST /upload/image", "POST /upload/mask", "GET /users", "POST /users", "GET /settings",
    "POST /settings", "GET /settings/{setting_id}", "POST /settings/{setting_id}", "GET /userdata",
    "GET /v2/userdata", "GET /userdata/{target:path}", "POST /userdata/{target:path}",
    "DELETE /userdata/{target:path}", "GET /global_subgraphs", "GET /global_subgraphs/{subgraph_id}",
    "GET /templates/{path:path}", "GET /docs/{path:path}", "GET /internal/logs", "GET /internal/logs/raw",
    "PATCH /internal/logs/subscribe", "GET /internal/folder_paths", "GET /internal/files/{directory_type}",
    "GET /view_metadata/{folder_name}", "GET /experiment/models/preview/{folder}/{path_index}/{filename:path}",
})
# ... and these too when a fresh node catalogue was read at start (else they wait, as the definitions need them).
ANSWERED_FROM_CATALOGUE = frozenset({"GET /object_info", "GET /object_info/{node_class}"})


class LoadingGate:
    """While the plugins load, holds each request that needs them until they are in (or fail: a 503 naming why).

    Hearth's API routes answer at once when listed in :data:`ANSWERED_WHILE_LOADING`; a path of no API route
    answers at once when it is a file of the UI served at ``/`` (or ``/hearth``), and otherwise waits: it may be a
    pack's route, or a pack's web folder under ``/extensions/``, neither of which exists yet.
    """

    def __init__(self, app: Any, state: ServerState, root_folder: Path) -> None:
        self.app = app
        self.state = state
        self.root_folder = root_folder.resolve()
        self._api: list[tuple[Any, set[str], str]] = [
            (route.path_regex, set(route.methods or ()), route.path)
            for router in API_ROUTERS for route in router.routes if isinstance(route, APIRoute)]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.state.is_loaded() and self.needs_plugins(scope):
            try:
                await self.state.wait_loaded()
            except PluginsNotLoaded as exc:
                await error_response(503, "plugins_not_loaded", str(exc))(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def needs_plugins(self, scope: Any) -> bool:
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        path = scope["path"]
        bare = path[len("/api"):] if path.startswith("/api/") else path
        at_once = ANSWERED_WHILE_LOADING | (ANSWERED_FROM_CATALOGUE if self.state.catalogue is not None else set())
        for regex, methods, template in self._api:
            if method in methods and regex.match(bare):
                return f"{method} {template}" not in at_once
        if path.startswith("/hearth") or path == "/":
            return False
        return not (self.root_folder / path.lstrip("/")).is_file()
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

    @app.exception_handler(PluginsNotLoaded)
    async def not_loaded(request: Request, exc: PluginsNotLoaded) -> Response:
        return error_response(503, "plugins_not_loaded", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
        return error_response(400, "invalid_request", f"Invalid request parameters: {fields}", problems, fields)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "server_error", f"{type(exc).__name__}: {exc}")
