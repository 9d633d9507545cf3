"""Alembic environment: runs on the connection the server hands over (see db.run_migrations)."""

from alembic import context
from sqlmodel import SQLModel

from hearth.registry_server.db import import_all_models

import_all_models()
target_metadata = SQLModel.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    # Command-line use (`alembic revision --autogenerate`): build an engine from the configured URL.
    from hearth.registry_server.db import make_engine

    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
