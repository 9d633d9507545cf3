"""The registry's FastAPI application: wiring of settings, database, storage, verification worker and routes."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hearth.registry_server.cache import CacheMiddleware, ChangeWatcher, ResponseCache
from hearth.registry_server.db import make_engine, run_migrations
from hearth.registry_server.deps import ServerContext
from hearth.registry_server.errors import install_handlers
from hearth.registry_server.settings import Settings
from hearth.registry_server.storage.services import make_storage
from hearth.registry_server.web.security import SecurityHeadersMiddleware

log = logging.getLogger("hearth.registry")


def open_server(settings: Settings, migrate: bool = True) -> ServerContext:
    """Database (migrated to the newest schema) and storage for these settings; used by the server and CLI."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    if migrate:
        run_migrations(engine)
    return ServerContext(settings=settings, engine=engine, storage=make_storage(settings.storage))


def create_app(settings: Settings | None = None, start_worker: bool = True, listen: str | None = None) -> FastAPI:
    """The app; `listen` (host:port, default HEARTH_REGISTRY_LISTEN) goes in this process's heartbeat row."""
    import os

    settings = settings or Settings.from_env()
    listen = os.environ.get("HEARTH_REGISTRY_LISTEN", "") if listen is None else listen
    # Private registries never cache: every read must pass its token check.
    cache = ResponseCache(0 if settings.private else settings.cache_ttl_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import anyio.to_thread

        from hearth.registry_server.processes import Heartbeat
        from hearth.registry_server.publishing.services import recover
        from hearth.registry_server.verification.services import verifier_name
        from hearth.registry_server.verification.worker import VerificationWorker

        # Reads are CPU-bound: a few threads finish sooner than anyio's default forty fighting over the GIL
        # (measured with bench/registry.py: p99 halves), and eight still overlap PostgreSQL and S3 round trips.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        server = open_server(settings)
        server.cache = cache
        watcher = ChangeWatcher(server.engine, cache, settings.cache_watch_s) if cache.ttl > 0 else None
        heartbeat = Heartbeat(server.engine, listen, settings.public_url)
        heartbeat.start()
        app.state.server = server
        cleaned = recover(server)
        log.info("registry ready: db %s, storage %s, verifier %s, cleaned %s", server.engine.url.render_as_string(),
                 server.storage.describe(), verifier_name(), cleaned)
        worker = VerificationWorker(server)
        app.state.worker = worker
        if start_worker:
            worker.start()
        if watcher:
            watcher.start()
        try:
            yield
        finally:
            if watcher:
                watcher.stop()
            worker.stop()
            heartbeat.stop()
            server.engine.dispose()

    app = FastAPI(title="Hearth registry", version="1", lifespan=lifespan,
                  description="Node-pack registry: ComfyUI registry API, PEP 691 simple index and Hearth's API.")
    install_handlers(app)

    def count_cached_install(path: str) -> None:
        app.state.server.count_download(path.split("/")[2])

    app.add_middleware(CacheMiddleware, cache=cache, on_install=count_cached_install)
    # Added last, so it is outermost: cached pages get the Content-Security-Policy too.
    app.add_middleware(SecurityHeadersMiddleware, public_url=settings.public_url)

    from hearth.registry_server.accounts.routes import router as accounts_router
    from hearth.registry_server.admin.routes import router as admin_router
    from hearth.registry_server.packs.routes import api, comfy
    from hearth.registry_server.publishing.routes import router as publishing_router
    from hearth.registry_server.simple.routes import router as simple_router
    from hearth.registry_server.storage.routes import router as storage_router
    from hearth.registry_server.web.routes import auth_pages, pages

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"ok": True, "private": settings.private, "upstream": settings.upstream}

    for router in (publishing_router, comfy, api, accounts_router, admin_router, storage_router, simple_router, auth_pages, pages):
        app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: `uvicorn --factory hearth.registry_server.app:app_from_env` with HEARTH_REGISTRY_* set."""
    return create_app(Settings.from_env())


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8080, workers: int = 1,
          log_level: str = "info") -> None:
    import os

    import uvicorn

    from hearth.registry_server.processes import check_may_start

    listen = f"{host}:{port}"
    # Migrate once here, so workers start on an up-to-date schema instead of racing to create it; then refuse a
    # second server on this database (seen by its heartbeat row) unless the servers share a --public-url.
    engine = open_server(settings).engine
    try:
        check_may_start(engine, listen, settings.public_url)
    finally:
        engine.dispose()
    if workers > 1:
        # Several processes need an import string; they read the same settings from the environment.
        os.environ.update(settings.to_env())
        os.environ["HEARTH_REGISTRY_LISTEN"] = listen
        uvicorn.run("hearth.registry_server.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level)
    else:
        uvicorn.run(create_app(settings, listen=listen), host=host, port=port, log_level=log_level)
