"""Users, publishers and tokens: creation, authentication and permission checks (shared by API and CLI)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from hearth.registry.manifest import PUBLISHER_ID_RE
from hearth.registry_server.accounts.models import Publisher, PublisherMember, Token, User
from hearth.registry_server.admin.services import audit
from hearth.registry_server.db import utcnow
from hearth.registry_server.errors import ApiError, not_found

SCOPES = ("read", "publish", "admin")
TOKEN_PREFIX = "hth_"
# Skip rewriting last_used_at more often than this: a private-mode read should not be a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(secret: str) -> str:
    # A 256-bit random secret needs no slow hash: sha256 cannot be brute-forced back to it.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_user(session: Session, name: str, is_admin: bool = False, actor: str = "cli") -> User:
    if not name or len(name) > 100:
        raise ApiError(422, "invalid_user", "user name must be 1-100 characters")
    user = User(name=name, is_admin=is_admin)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "user_exists", f"user {name!r} already exists") from None
    audit(session, actor, "user.create", f"user:{name}", {"admin": is_admin})
    session.commit()
    return user


def get_user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise not_found("user", name)
    return user


def create_publisher(session: Session, publisher_id: str, owner: str, name: str = "", actor: str = "cli") -> Publisher:
    if not PUBLISHER_ID_RE.match(publisher_id) or len(publisher_id) > 100:
        raise ApiError(422, "invalid_publisher_id",
                       f"publisher id {publisher_id!r} must match ^[a-z][a-z0-9-]*$ (at most 100 characters)")
    user = get_user(session, owner)
    if session.get(Publisher, publisher_id) is not None:
        raise ApiError(409, "publisher_exists", f"publisher {publisher_id!r} already exists")
    publisher = Publisher(id=publisher_id, name=name or publisher_id)
    session.add(publisher)
    session.add(PublisherMember(publisher_id=publisher_id, user_id=user.id, role="owner"))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "publisher_exists", f"publisher {publisher_id!r} already exists") from None
    audit(session, actor, "publisher.create", f"publisher:{publisher_id}", {"owner": owner})
    session.commit()
    return publisher


def add_member(session: Session, publisher_id: str, user_name: str, role: str = "member", actor: str = "cli") -> None:
    if role not in ("owner", "member"):
        raise ApiError(422, "invalid_role", f"role {role!r} must be owner or member")
    get_publisher(session, publisher_id)
    user = get_user(session, user_name)
    session.merge(PublisherMember(publisher_id=publisher_id, user_id=user.id, role=role))
    audit(session, actor, "publisher.member", f"publisher:{publisher_id}", {"user": user_name, "role": role})
    session.commit()


TRUST_LEVELS = ("trusted", "untrusted")


def set_trust(session: Session, publisher_id: str, level: str, actor: str, reason: str = "") -> Publisher:
    """An admin's decision that a publisher's verified versions skip (or need) review; audited."""
    if level not in TRUST_LEVELS:
        raise ApiError(422, "invalid_trust", f"trust level {level!r} is not one of {', '.join(TRUST_LEVELS)}")
    publisher = get_publisher(session, publisher_id)
    before, publisher.trust = publisher.trust, level
    session.add(publisher)
    audit(session, actor, "publisher.trust", publisher_id, {"from": before, "to": level, "reason": reason})
    session.commit()
    return publisher


def get_publisher(session: Session, publisher_id: str) -> Publisher:
    publisher = session.get(Publisher, publisher_id)
    if publisher is None:
        raise ApiError(404, "publisher_not_found",
                       f"publisher {publisher_id!r} not found; an admin creates it with "
                       f"`comfy registry admin create-publisher {publisher_id} --owner USER`")
    return publisher


def create_token(session: Session, user_name: str | None, publisher_id: str | None, scope: str = "publish",
                 expires_days: float | None = None, actor: str = "cli") -> tuple[str, Token]:
    """Make a token; the secret is returned once and only its hash is stored.

    Without a user name, the publisher's first owner owns the token.
    """
    if scope not in SCOPES:
        raise ApiError(422, "invalid_scope", f"scope {scope!r} must be one of {', '.join(SCOPES)}")
    if publisher_id is not None:
        get_publisher(session, publisher_id)
    if user_name is not None:
        user = get_user(session, user_name)
    elif publisher_id is not None:
        owner = session.exec(select(PublisherMember).where(PublisherMember.publisher_id == publisher_id)
                             .order_by(PublisherMember.role.desc())).first()
        if owner is None:
            raise ApiError(422, "no_owner", f"publisher {publisher_id!r} has no members; pass --user")
        user = session.get(User, owner.user_id)
    else:
        raise ApiError(422, "token_needs_owner", "a token needs --publisher or --user")
    if scope == "publish" and publisher_id is None:
        raise ApiError(422, "token_needs_publisher", "a publish token needs --publisher")
    if scope == "admin" and not user.is_admin:
        raise ApiError(403, "not_admin", f"user {user.name!r} is not an admin; admin tokens need an admin user")
    if publisher_id is not None and not user.is_admin and not _is_member(session, publisher_id, user.id):
        raise ApiError(403, "not_member", f"user {user.name!r} is not a member of publisher {publisher_id!r}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
    token = Token(token_hash=hash_token(secret), prefix=secret[:12], user_id=user.id, publisher_id=publisher_id,
                  scope=scope, expires_at=expires_at)
    session.add(token)
    session.flush()
    audit(session, actor, "token.create", f"token:{token.prefix}",
          {"user": user.name, "publisher": publisher_id, "scope": scope,
           "expires_at": expires_at.isoformat() if expires_at else None})
    session.commit()
    return secret, token


def revoke_token(session: Session, prefix_or_secret: str, actor: str = "cli") -> Token:
    """Revoke by the secret itself or by its displayed prefix (the first 12 characters)."""
    token = session.exec(select(Token).where(Token.token_hash == hash_token(prefix_or_secret))).first()
    if token is None:
        matches = session.exec(select(Token).where(Token.prefix == prefix_or_secret[:12])).all()
        if len(matches) > 1:
            raise ApiError(409, "ambiguous_token", f"{len(matches)} tokens start with {prefix_or_secret!r}")
        token = matches[0] if matches else None
    if token is None:
        raise not_found("token", prefix_or_secret[:12])
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit(session, actor, "token.revoke", f"token:{token.prefix}")
        session.commit()
    return token


def authenticate(session: Session, secret: str | None, scope: str) -> Token:
    """The token for `secret` if it is valid and allows `scope` (admin ⊇ publish ⊇ read); else a 401/403."""
    if not secret:
        raise ApiError(401, "token_required", f"this needs a {scope} token; pass it as a Bearer token")
    token = session.exec(select(Token).where(Token.token_hash == hash_token(secret))).first()
    if token is None:
        raise ApiError(401, "invalid_token", "token not recognised; check it or create a new one")
    now = utcnow()
    if token.revoked_at is not None:
        raise ApiError(401, "token_revoked", f"token {token.prefix}… was revoked on {token.revoked_at:%Y-%m-%d}")
    if token.expires_at is not None and token.expires_at <= now:
        raise ApiError(401, "token_expired", f"token {token.prefix}… expired on {token.expires_at:%Y-%m-%d %H:%M}Z")
    if SCOPES.index(token.scope) < SCOPES.index(scope):
        raise ApiError(403, "insufficient_scope", f"token {token.prefix}… has scope {token.scope!r}, "
                                                  f"this needs {scope!r}")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.add(token)
        session.commit()
    return token


def _is_member(session: Session, publisher_id: str, user_id: int) -> bool:
    return session.get(PublisherMember, (publisher_id, user_id)) is not None


def check_can_publish(session: Session, token: Token, publisher_id: str) -> None:
    user = session.get(User, token.user_id)
    if token.scope == "admin" and user is not None and user.is_admin:
        return
    if token.publisher_id is not None and token.publisher_id != publisher_id:
        raise ApiError(403, "wrong_publisher",
                       f"token {token.prefix}… publishes for {token.publisher_id!r}, not {publisher_id!r}")
    if not _is_member(session, publisher_id, token.user_id):
        raise ApiError(403, "not_member", f"the token's user is not a member of publisher {publisher_id!r}")


def actor_for(session: Session, token: Token) -> str:
    user = session.get(User, token.user_id)
    return f"user:{user.name if user else '?'} token:{token.prefix}"


def list_tokens(session: Session) -> list[Token]:
    return list(session.exec(select(Token).order_by(Token.id)).all())
