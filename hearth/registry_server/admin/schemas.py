"""Admin request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel


class ModerationAction(BaseModel):
    target: str  # PACK or PACK@VERSION
    reason: str = ""


class AuditOut(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: dict


class SuppressionIn(BaseModel):
    pack: str
    rule: str
    reason: str
    path: str = "*"
    line: int | None = None
