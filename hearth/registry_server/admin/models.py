"""The audit log: one row per publisher or admin action, never updated or deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from hearth.registry_server.db import utcnow


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str  # "user:NAME", "token:PREFIX", "cli", "system"
    action: str = Field(index=True)
    target: str = ""
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Suppression(SQLModel, table=True):
    """An admin's ruling that a verification finding is a false positive for a pack; later versions of the pack
    are verified with it applied (the sandbox hides matching findings and recomputes the verdict)."""

    __tablename__ = "suppressions"

    id: int | None = Field(default=None, primary_key=True)
    pack_id: str = Field(foreign_key="packs.id", index=True)
    rule: str
    path: str = "*"  # "*" = any file
    line: int | None = None  # None = anywhere in the file
    by: str
    reason: str
    created_at: datetime = Field(default_factory=utcnow)
