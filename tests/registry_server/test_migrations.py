"""Alembic migrations build exactly the schema the models describe, and running them again is a no-op."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from hearth.registry_server.db import import_all_models, make_engine, run_migrations
from tests.registry_server.helpers import unique


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migrations_match_models(kind: str, tmp_path: Path, request: pytest.FixtureRequest):
    if kind == "postgres":
        url = request.getfixturevalue("postgres").create_database(unique("mig_"))
    else:
        url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    run_migrations(engine)
    run_migrations(engine)  # idempotent: every server start runs it
    import_all_models()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], "models changed without a migration: add one with alembic revision --autogenerate"
    engine.dispose()
