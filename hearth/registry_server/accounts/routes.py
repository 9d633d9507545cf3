"""Account routes: publisher profiles and `whoami` for checking a token before using it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session

from hearth.registry_server.accounts.models import User
from hearth.registry_server.accounts.schemas import PublisherOut, TokenInfo
from hearth.registry_server.accounts.services import authenticate, get_publisher
from hearth.registry_server.deps import (
    ServerContext,
    get_server,
    get_session,
    read_access,
    token_from_request,
)
from hearth.registry_server.packs.schemas import PackSummary
from hearth.registry_server.packs.services import publisher_packs

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.get("/publishers/{publisher_id}", response_model=PublisherOut, dependencies=[Depends(read_access)])
def publisher(publisher_id: str, request: Request, session: Session = Depends(get_session),
              server: ServerContext = Depends(get_server)) -> PublisherOut:
    p = get_publisher(session, publisher_id)
    base = server.base_url(request)
    return PublisherOut(id=p.id, name=p.name, description=p.description, banned=p.banned,
                        # Only packs with an installable version, as in search: a pack whose versions all wait
                        # for review (or verification) is not listed anywhere yet.
                        packs=[PackSummary.of(x, base) for x in publisher_packs(session, publisher_id)
                               if x.latest_version])


@router.get("/whoami", response_model=TokenInfo)
def whoami(request: Request, session: Session = Depends(get_session)) -> TokenInfo:
    """What the presented token is: its owner, publisher, scope and expiry (401 if it is not valid)."""
    token = authenticate(session, token_from_request(request), "read")
    user = session.get(User, token.user_id)
    return TokenInfo(prefix=token.prefix, user=user.name if user else "", publisher=token.publisher_id,
                     scope=token.scope, expires_at=token.expires_at.isoformat() if token.expires_at else None,
                     last_used_at=token.last_used_at.isoformat() if token.last_used_at else None)
