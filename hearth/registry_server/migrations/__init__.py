"""Alembic migrations of the registry database; db.run_migrations applies them at every start."""
