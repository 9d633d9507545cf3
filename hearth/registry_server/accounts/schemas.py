"""Account response bodies: publishers with their packs, and what a token may do."""

from __future__ import annotations

from pydantic import BaseModel

from hearth.registry_server.packs.schemas import PackSummary


class PublisherOut(BaseModel):
    id: str
    name: str
    description: str
    banned: bool
    packs: list[PackSummary]


class TokenInfo(BaseModel):
    """Never the secret: only what it is and what it allows."""

    prefix: str
    user: str
    publisher: str | None
    scope: str
    expires_at: str | None
    last_used_at: str | None
