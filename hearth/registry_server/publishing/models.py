"""Upload tickets: a reserved (pack, version) with a single-use, expiring upload URL bound to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from hearth.registry_server.db import utcnow


class UploadTicket(SQLModel, table=True):
    """A publish in progress. The version row is created only when the archive is stored, so a version never
    exists without its file; the unique (pack_key, version) here makes one of two concurrent publishes lose."""

    __tablename__ = "upload_tickets"
    __table_args__ = (UniqueConstraint("pack_key", "version", name="uq_upload_tickets_pack_version"),)

    id: int | None = Field(default=None, primary_key=True)
    secret_hash: str = Field(unique=True, index=True, max_length=64)
    version_id: str = Field(max_length=36)
    pack_id: str = Field(max_length=100)
    pack_key: str = Field(max_length=100)
    version: str = Field(max_length=100)
    publisher_id: str = Field(foreign_key="publishers.id")
    token_id: int | None = Field(default=None, foreign_key="tokens.id")
    expected_sha256: str = ""
    request: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
