"""Database: the engine for a URL (SQLite by default, PostgreSQL by URL), sessions, and migrations at start."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """Aware UTC; SQLModel's UTCDateTime stores it and reads it back aware, also from SQLite."""
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=20, max_overflow=20)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # noqa: ANN001
            # WAL lets readers run while a publish writes; the busy timeout makes writers queue, not fail.
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    try:
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise RuntimeError(f"database URL {url.split('@')[-1]!r} needs a driver that is not installed "
                           f"({exc.name}); for PostgreSQL: pip install 'psycopg[binary]'") from None


def run_migrations(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent; safe with several servers starting)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two processes starting at once must not both create tables: serialise on an advisory lock.
            conn.execute(text("SELECT pg_advisory_xact_lock(804211)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def import_all_models() -> None:
    """Register every table on SQLModel.metadata (Alembic and tests need the full set)."""
    from hearth.registry_server import processes as _processes  # noqa: F401
    from hearth.registry_server.accounts import models as _accounts  # noqa: F401
    from hearth.registry_server.admin import models as _admin  # noqa: F401
    from hearth.registry_server.packs import models as _packs  # noqa: F401
    from hearth.registry_server.publishing import models as _publishing  # noqa: F401


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine):  # noqa: ANN202
    """Serialise migrations of one SQLite file across processes (`serve --workers N` starts them together)."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.migrate-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
