"""Account tables: users, publishers, publisher members and API tokens (stored as hashes only)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from hearth.registry_server.db import utcnow


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    is_admin: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Publisher(SQLModel, table=True):
    __tablename__ = "publishers"

    id: str = Field(primary_key=True, max_length=100)
    name: str = ""
    description: str = ""
    banned: bool = False
    # Set by admins only: "trusted" publishers' verified versions go active on a passing scan; anyone else's
    # wait for a reviewer (see Settings.review).
    trust: str = Field(default="untrusted", max_length=20)
    created_at: datetime = Field(default_factory=utcnow)


class PublisherMember(SQLModel, table=True):
    __tablename__ = "publisher_members"

    publisher_id: str = Field(foreign_key="publishers.id", primary_key=True)
    user_id: int = Field(foreign_key="users.id", primary_key=True)
    role: str = "member"  # owner | member


class Token(SQLModel, table=True):
    """An API token. Only the sha256 of the secret is kept; `prefix` lets people tell their tokens apart."""

    __tablename__ = "tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    prefix: str = Field(max_length=16)
    user_id: int = Field(foreign_key="users.id", index=True)
    publisher_id: str | None = Field(default=None, foreign_key="publishers.id")
    scope: str = "publish"  # publish | read | admin
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
